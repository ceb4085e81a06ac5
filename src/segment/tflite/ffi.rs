//! The part of LiteRT's C API (`litert/c/*.h`, LiteRT 2.x) this backend calls, declared by hand:
//! two dozen functions and three plain structs that the headers declare ABI stable
//! (`LiteRtLayout` is 68 bytes with `dimensions` at offset 4). The functions are looked up in
//! `libLiteRt.so` when the first TFLite model is opened (`dlopen`), not linked: every build can
//! run a `.tflite` model where the library is installed, and nothing needs it to build or to
//! run a safetensors model. Checked against the v2.2.0 headers (`litert/c/*.h`) and run against
//! the 2.3.0 library that scripts/tflite.sh pins; the C API is not frozen (2.2 added the
//! environment argument of `LiteRtCreateModelFromFile`), so moving the pin means re-checking these.

#![allow(non_upper_case_globals, non_snake_case, non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub type LiteRtStatus = c_uint;
pub const kLiteRtStatusOk: LiteRtStatus = 0;

pub type LiteRtEnvironment = *mut c_void;
pub type LiteRtModel = *mut c_void;
pub type LiteRtSignature = *mut c_void;
pub type LiteRtTensor = *mut c_void;
pub type LiteRtOptions = *mut c_void;
pub type LiteRtCompiledModel = *mut c_void;
pub type LiteRtTensorBuffer = *mut c_void;
pub type LiteRtOpaqueOptions = *mut c_void;
pub type LiteRtParamIndex = usize;
pub type LiteRtHwAcceleratorSet = c_int;
pub const kLiteRtHwAcceleratorCpu: LiteRtHwAcceleratorSet = 1;

pub type LiteRtTensorTypeId = c_uint;
pub const kLiteRtRankedTensorType: LiteRtTensorTypeId = 0;

pub type LiteRtElementType = c_uint;
pub const kLiteRtElementTypeFloat32: LiteRtElementType = 1;
pub const kLiteRtElementTypeInt32: LiteRtElementType = 2;
pub const kLiteRtElementTypeUInt8: LiteRtElementType = 3;
pub const kLiteRtElementTypeInt16: LiteRtElementType = 7;
pub const kLiteRtElementTypeInt8: LiteRtElementType = 9;
pub const kLiteRtElementTypeFloat16: LiteRtElementType = 10;

pub type LiteRtQuantizationTypeId = c_uint;
pub const kLiteRtQuantizationNone: LiteRtQuantizationTypeId = 0;
pub const kLiteRtQuantizationPerTensor: LiteRtQuantizationTypeId = 1;

pub type LiteRtTensorBufferType = c_uint;
pub const kLiteRtTensorBufferTypeHostMemory: LiteRtTensorBufferType = 1;

pub type LiteRtTensorBufferLockMode = c_uint;
pub const kLiteRtTensorBufferLockModeRead: LiteRtTensorBufferLockMode = 0;
pub const kLiteRtTensorBufferLockModeWrite: LiteRtTensorBufferLockMode = 1;

/// `LiteRtLayout`: `unsigned rank : 7; bool has_strides : 1;` then the dimensions.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LiteRtLayout {
    pub rank_and_flags: u8,
    pub dimensions: [i32; 8],
    pub strides: [u32; 8],
}

impl LiteRtLayout {
    pub fn rank(&self) -> usize {
        (self.rank_and_flags & 0x7f) as usize
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LiteRtRankedTensorType {
    pub element_type: LiteRtElementType,
    pub layout: LiteRtLayout,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LiteRtQuantizationPerTensor {
    pub scale: f32,
    pub zero_point: i64,
}

const _: () = assert!(std::mem::size_of::<LiteRtLayout>() == 68);
const _: () = assert!(std::mem::offset_of!(LiteRtLayout, dimensions) == 4);
const _: () = assert!(std::mem::size_of::<LiteRtRankedTensorType>() == 72);

/// Declares the functions as fields of [`Api`] (resolved with `dlsym`) and as methods that call
/// them.
macro_rules! dynamic_api {
    ($( $(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// LiteRT's functions, resolved in a loaded `libLiteRt.so`.
        pub struct Api {
            $( $name: unsafe extern "C" fn($($ty),*) $(-> $ret)?, )*
        }

        impl Api {
            #[cfg_attr(target_feature = "crt-static", allow(dead_code))]
            /// Resolves every function in `handle` (from `dlopen`); names the first one missing.
            unsafe fn resolve(handle: *mut c_void) -> Result<Self, &'static str> {
                Ok(Self {
                    $( $name: {
                        let symbol = libc::dlsym(handle, concat!(stringify!($name), "\0").as_ptr().cast());
                        if symbol.is_null() {
                            return Err(stringify!($name));
                        }
                        // SAFETY: the symbol is LiteRT's function of this name, whose C
                        // signature the declaration below repeats.
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($ty),*) $(-> $ret)?>(symbol)
                    }, )*
                })
            }

            $(
                $(#[$doc])*
                pub unsafe fn $name(&self, $($arg: $ty),*) $(-> $ret)? {
                    (self.$name)($($arg),*)
                }
            )*
        }
    };
}

dynamic_api! {
    pub fn LiteRtCreateEnvironment(
        num_options: c_int,
        options: *const c_void,
        environment: *mut LiteRtEnvironment,
    ) -> LiteRtStatus;
    pub fn LiteRtDestroyEnvironment(environment: LiteRtEnvironment);
    /// LiteRT >= 2.2 (before: no environment argument).
    pub fn LiteRtCreateModelFromFile(
        environment: LiteRtEnvironment,
        filename: *const c_char,
        model: *mut LiteRtModel,
    ) -> LiteRtStatus;
    pub fn LiteRtDestroyModel(model: LiteRtModel);
    pub fn LiteRtGetNumModelSignatures(
        model: LiteRtModel,
        num_signatures: *mut LiteRtParamIndex,
    ) -> LiteRtStatus;
    pub fn LiteRtGetModelSignature(
        model: LiteRtModel,
        signature_index: LiteRtParamIndex,
        signature: *mut LiteRtSignature,
    ) -> LiteRtStatus;
    pub fn LiteRtGetNumSignatureInputs(
        signature: LiteRtSignature,
        num_inputs: *mut LiteRtParamIndex,
    ) -> LiteRtStatus;
    pub fn LiteRtGetNumSignatureOutputs(
        signature: LiteRtSignature,
        num_outputs: *mut LiteRtParamIndex,
    ) -> LiteRtStatus;
    pub fn LiteRtGetSignatureInputName(
        signature: LiteRtSignature,
        input_idx: LiteRtParamIndex,
        input_name: *mut *const c_char,
    ) -> LiteRtStatus;
    pub fn LiteRtGetSignatureOutputName(
        signature: LiteRtSignature,
        output_idx: LiteRtParamIndex,
        output_name: *mut *const c_char,
    ) -> LiteRtStatus;
    pub fn LiteRtGetSignatureInputTensorByIndex(
        signature: LiteRtSignature,
        input_idx: LiteRtParamIndex,
        tensor: *mut LiteRtTensor,
    ) -> LiteRtStatus;
    pub fn LiteRtGetSignatureOutputTensorByIndex(
        signature: LiteRtSignature,
        output_idx: LiteRtParamIndex,
        tensor: *mut LiteRtTensor,
    ) -> LiteRtStatus;
    pub fn LiteRtGetTensorTypeId(
        tensor: LiteRtTensor,
        type_id: *mut LiteRtTensorTypeId,
    ) -> LiteRtStatus;
    pub fn LiteRtGetRankedTensorType(
        tensor: LiteRtTensor,
        ranked_tensor_type: *mut LiteRtRankedTensorType,
    ) -> LiteRtStatus;
    pub fn LiteRtGetQuantizationTypeId(
        tensor: LiteRtTensor,
        q_type_id: *mut LiteRtQuantizationTypeId,
    ) -> LiteRtStatus;
    pub fn LiteRtGetPerTensorQuantization(
        tensor: LiteRtTensor,
        per_tensor_quantization: *mut LiteRtQuantizationPerTensor,
    ) -> LiteRtStatus;
    pub fn LiteRtCreateOptions(options: *mut LiteRtOptions) -> LiteRtStatus;
    pub fn LiteRtDestroyOptions(options: LiteRtOptions);
    pub fn LiteRtSetOptionsHardwareAccelerators(
        options: LiteRtOptions,
        hardware_accelerators: LiteRtHwAcceleratorSet,
    ) -> LiteRtStatus;
    pub fn LiteRtCreateOpaqueOptions(
        payload_identifier: *const c_char,
        payload_data: *mut c_void,
        payload_destructor: Option<unsafe extern "C" fn(*mut c_void)>,
        options: *mut LiteRtOpaqueOptions,
    ) -> LiteRtStatus;
    pub fn LiteRtDestroyOpaqueOptions(options: LiteRtOpaqueOptions);
    /// Takes ownership of `opaque_options` on success.
    pub fn LiteRtAddOpaqueOptions(
        options: LiteRtOptions,
        opaque_options: LiteRtOpaqueOptions,
    ) -> LiteRtStatus;
    pub fn LiteRtCreateCompiledModel(
        environment: LiteRtEnvironment,
        model: LiteRtModel,
        compilation_options: LiteRtOptions,
        compiled_model: *mut LiteRtCompiledModel,
    ) -> LiteRtStatus;
    pub fn LiteRtDestroyCompiledModel(compiled_model: LiteRtCompiledModel);
    pub fn LiteRtCreateManagedTensorBuffer(
        env: LiteRtEnvironment,
        buffer_type: LiteRtTensorBufferType,
        tensor_type: *const LiteRtRankedTensorType,
        buffer_size: usize,
        buffer: *mut LiteRtTensorBuffer,
    ) -> LiteRtStatus;
    pub fn LiteRtDestroyTensorBuffer(buffer: LiteRtTensorBuffer);
    pub fn LiteRtLockTensorBuffer(
        tensor_buffer: LiteRtTensorBuffer,
        host_mem_addr: *mut *mut c_void,
        lock_mode: LiteRtTensorBufferLockMode,
    ) -> LiteRtStatus;
    pub fn LiteRtUnlockTensorBuffer(buffer: LiteRtTensorBuffer) -> LiteRtStatus;
    pub fn LiteRtRunCompiledModel(
        compiled_model: LiteRtCompiledModel,
        signature_index: LiteRtParamIndex,
        num_input_buffers: usize,
        input_buffers: *mut LiteRtTensorBuffer,
        num_output_buffers: usize,
        output_buffers: *mut LiteRtTensorBuffer,
    ) -> LiteRtStatus;
}

/// The library's file name, as the dynamic loader searches for it.
pub const LIBRARY: &str = "libLiteRt.so";

/// Where `libLiteRt.so` is looked for, in order: `EDGESIFT_LITERT_LIB` (the file),
/// `LITERT_LIB_DIR` (its directory; scripts/tflite.sh sets it), the directory of the edgesift
/// binary (ship the library next to it), then the loader's own search (`LD_LIBRARY_PATH`,
/// `/etc/ld.so.conf` directories, `/usr/lib`).
pub fn candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(file) = std::env::var_os("EDGESIFT_LITERT_LIB") {
        c.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("LITERT_LIB_DIR") {
        c.push(Path::new(&dir).join(LIBRARY));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        c.push(dir.join(LIBRARY));
    }
    c.push(PathBuf::from(LIBRARY));
    c
}

/// Loads the first of `candidates` that opens and has every function. A bare file name goes to
/// the loader's search; a path that does not exist is skipped.
pub fn load_from(candidates: &[PathBuf]) -> Result<(Api, PathBuf), String> {
    // A statically linked glibc binary (the .deb's, `+crt-static`) would load a second libc with
    // the library; glibc does not support that, so such a build refuses instead of crashing.
    #[cfg(target_feature = "crt-static")]
    {
        let _ = candidates;
        Err(format!(
            "the tflite backend loads LiteRT's {LIBRARY} at run time, which this statically \
             linked edgesift cannot do; use a dynamically linked build (scripts/cross-build.sh \
             without --static, e.g. --glibc 2.31)"
        ))
    }
    #[cfg(not(target_feature = "crt-static"))]
    load_dynamic(candidates)
}

#[cfg(not(target_feature = "crt-static"))]
fn load_dynamic(candidates: &[PathBuf]) -> Result<(Api, PathBuf), String> {
    use std::ffi::{CStr, CString};
    let mut tried = Vec::new();
    for path in candidates {
        let bare = path.components().count() == 1;
        if !bare && !path.is_file() {
            tried.push(format!("{} (no such file)", path.display()));
            continue;
        }
        let Ok(cpath) = CString::new(path.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: dlopen with a NUL-terminated name; the handle is never closed (the functions
        // stay in use for the life of the process).
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns a NUL-terminated message owned by libc, or null.
            let why = unsafe {
                let e = libc::dlerror();
                if e.is_null() {
                    "dlopen failed".to_string()
                } else {
                    CStr::from_ptr(e).to_string_lossy().into_owned()
                }
            };
            tried.push(format!("{} ({why})", path.display()));
            continue;
        }
        // SAFETY: a handle dlopen just returned.
        match unsafe { Api::resolve(handle) } {
            Ok(api) => return Ok((api, path.clone())),
            Err(missing) => tried.push(format!(
                "{} (has no {missing}: not LiteRT 2.2 or later)",
                path.display()
            )),
        }
    }
    Err(format!(
        "the tflite backend needs LiteRT's {LIBRARY} (2.2 or later; scripts/tflite.sh fetches \
         2.3.0 from the ai-edge-litert wheel): put it next to the edgesift binary or in the \
         library path, or name it with EDGESIFT_LITERT_LIB; tried {}",
        tried.join(", ")
    ))
}

/// The process's LiteRT, loaded on first use from [`candidates`].
pub fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        load_from(&candidates()).map(|(api, path)| {
            tracing::info!(library = %path.display(), "loaded LiteRT for the tflite backend");
            api
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}
