//! The TFLite runtime: LiteRT (Google's current TensorFlow Lite) through its C API (`ffi.rs`),
//! CPU accelerator (XNNPACK kernels, with the builtin kernels as fallback).
//!
//! Why not the `tflite` crate: it vendors TensorFlow Lite 1.15.5 (2019), whose op resolver stops
//! at versions older than what a current converter writes (TRANSPOSE_CONV v3, the mask-prototype
//! upsampling with its bias input; int8 DEPTH_TO_SPACE/TRANSPOSE_CONV not at all) and has no
//! XNNPACK. See docs/PERFORMANCE.md#tflite-backend.
//!
//! `libLiteRt.so` comes from the `ai-edge-litert` wheel (scripts/tflite.sh fetches it and sets
//! `LITERT_LIB_DIR`) and is loaded when the first model opens (`ffi::api`). No crate
//! wraps this API well enough: `litert-sys` 0.2 declares the 2.1 API (its
//! `LiteRtCreateModelFromFile` lacks 2.2's environment argument), and its build script downloads
//! from GitHub with 70 build dependencies; the two dozen functions used are declared in `ffi.rs`.

use super::ffi as sys;
use super::{ElemType, Runtime, TensorDesc, TfliteOptions};
use crate::segment::SegmentError;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;

/// A compiled model with one host buffer per input and output.
pub(crate) struct LiteRt {
    api: &'static sys::Api,
    env: sys::LiteRtEnvironment,
    model: sys::LiteRtModel,
    options: sys::LiteRtOptions,
    compiled: sys::LiteRtCompiledModel,
    inputs: Vec<sys::LiteRtTensorBuffer>,
    outputs: Vec<sys::LiteRtTensorBuffer>,
    input_desc: TensorDesc,
    output_desc: Vec<TensorDesc>,
    output_data: Vec<Vec<u8>>,
}

// Safety: the handles are owned by this value alone and used through `&mut self` (or `&self`
// for reading copied data); LiteRT objects carry no thread affinity on the CPU accelerator.
unsafe impl Send for LiteRt {}

fn check(status: sys::LiteRtStatus, what: &str, path: &Path) -> Result<(), SegmentError> {
    if status == sys::kLiteRtStatusOk {
        Ok(())
    } else {
        Err(SegmentError::Architecture(format!(
            "{}: LiteRT {what} failed (status {status})",
            path.display()
        )))
    }
}

/// The CPU accelerator's options payload (what LiteRT's `LrtCpuOptions` helper, which lives
/// outside libLiteRt.so, serialises): a malloc'd TOML string under the identifier `xnnpack`.
unsafe fn cpu_options(
    api: &sys::Api,
    options: sys::LiteRtOptions,
    threads: usize,
    path: &Path,
) -> Result<(), SegmentError> {
    unsafe extern "C" fn free_payload(p: *mut std::ffi::c_void) {
        libc::free(p);
    }
    let toml = CString::new(format!("num_threads = {threads}\n")).expect("no NUL in a number");
    let bytes = toml.as_bytes_with_nul();
    let payload = libc::malloc(bytes.len());
    if payload.is_null() {
        return Err(SegmentError::BadInput("out of memory".into()));
    }
    ptr::copy_nonoverlapping(bytes.as_ptr(), payload as *mut u8, bytes.len());
    let mut opaque: sys::LiteRtOpaqueOptions = ptr::null_mut();
    let st = api.LiteRtCreateOpaqueOptions(
        c"xnnpack".as_ptr(),
        payload,
        Some(free_payload),
        &mut opaque,
    );
    if st != sys::kLiteRtStatusOk {
        libc::free(payload);
        return check(st, "CPU options", path);
    }
    let st = api.LiteRtAddOpaqueOptions(options, opaque);
    if st != sys::kLiteRtStatusOk {
        api.LiteRtDestroyOpaqueOptions(opaque);
    }
    check(st, "adding the CPU options", path)
}

/// Opens `path` on the CPU.
pub(crate) fn open(path: &Path, opts: &TfliteOptions) -> Result<LiteRt, SegmentError> {
    if !path.is_file() {
        return Err(SegmentError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SegmentError::BadInput(format!("{}: path has a NUL byte", path.display())))?;
    let api = sys::api().map_err(|e| SegmentError::BadInput(format!("{}: {e}", path.display())))?;
    let mut rt = LiteRt {
        api,
        env: ptr::null_mut(),
        model: ptr::null_mut(),
        options: ptr::null_mut(),
        compiled: ptr::null_mut(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        input_desc: TensorDesc {
            name: String::new(),
            shape: Vec::new(),
            dtype: ElemType::F32,
            quant: None,
        },
        output_desc: Vec::new(),
        output_data: Vec::new(),
    };
    // Every handle lands in `rt` as soon as it exists, so an early return frees it (Drop).
    unsafe {
        check(
            api.LiteRtCreateEnvironment(0, ptr::null(), &mut rt.env),
            "environment",
            path,
        )?;
        check(
            api.LiteRtCreateModelFromFile(rt.env, cpath.as_ptr(), &mut rt.model),
            "reading the model (is it a .tflite file?)",
            path,
        )?;
        let mut nsig = 0;
        check(
            api.LiteRtGetNumModelSignatures(rt.model, &mut nsig),
            "signatures",
            path,
        )?;
        if nsig == 0 {
            return Err(SegmentError::Architecture(format!(
                "{}: the model has no signature",
                path.display()
            )));
        }
        let mut sig: sys::LiteRtSignature = ptr::null_mut();
        check(
            api.LiteRtGetModelSignature(rt.model, 0, &mut sig),
            "signature 0",
            path,
        )?;
        let (mut nin, mut nout) = (0, 0);
        check(
            api.LiteRtGetNumSignatureInputs(sig, &mut nin),
            "inputs",
            path,
        )?;
        check(
            api.LiteRtGetNumSignatureOutputs(sig, &mut nout),
            "outputs",
            path,
        )?;
        if nin != 1 {
            return Err(SegmentError::Architecture(format!(
                "{}: the model has {nin} inputs; YOLOv8-seg has one image input",
                path.display()
            )));
        }
        let mut types = Vec::new();
        for (i, is_input) in std::iter::once((0, true)).chain((0..nout).map(|i| (i, false))) {
            let mut tensor: sys::LiteRtTensor = ptr::null_mut();
            let mut name: *const c_char = ptr::null();
            if is_input {
                check(
                    api.LiteRtGetSignatureInputTensorByIndex(sig, i, &mut tensor),
                    "input tensor",
                    path,
                )?;
                check(
                    api.LiteRtGetSignatureInputName(sig, i, &mut name),
                    "input name",
                    path,
                )?;
            } else {
                check(
                    api.LiteRtGetSignatureOutputTensorByIndex(sig, i, &mut tensor),
                    "output tensor",
                    path,
                )?;
                check(
                    api.LiteRtGetSignatureOutputName(sig, i, &mut name),
                    "output name",
                    path,
                )?;
            }
            let name = if name.is_null() {
                format!("{}{i}", if is_input { "input" } else { "output" })
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            };
            let (desc, ty) = describe(api, tensor, name, path)?;
            types.push(ty);
            if is_input {
                rt.input_desc = desc;
            } else {
                rt.output_desc.push(desc);
            }
        }
        check(api.LiteRtCreateOptions(&mut rt.options), "options", path)?;
        check(
            api.LiteRtSetOptionsHardwareAccelerators(rt.options, sys::kLiteRtHwAcceleratorCpu),
            "selecting the CPU accelerator",
            path,
        )?;
        if opts.threads > 0 {
            cpu_options(api, rt.options, opts.threads, path)?;
        }
        check(
            api.LiteRtCreateCompiledModel(rt.env, rt.model, rt.options, &mut rt.compiled),
            "compiling the model (an op this runtime lacks?)",
            path,
        )?;
        let descs: Vec<TensorDesc> = std::iter::once(rt.input_desc.clone())
            .chain(rt.output_desc.iter().cloned())
            .collect();
        for (k, (desc, ty)) in descs.iter().zip(&types).enumerate() {
            let bytes = desc.shape.iter().product::<usize>() * elem_size(desc.dtype);
            let mut buf: sys::LiteRtTensorBuffer = ptr::null_mut();
            check(
                api.LiteRtCreateManagedTensorBuffer(
                    rt.env,
                    sys::kLiteRtTensorBufferTypeHostMemory,
                    ty as *const sys::LiteRtRankedTensorType,
                    bytes,
                    &mut buf,
                ),
                &format!("a buffer for `{}`", desc.name),
                path,
            )?;
            if k == 0 {
                rt.inputs.push(buf);
            } else {
                rt.outputs.push(buf);
                rt.output_data.push(vec![0; bytes]);
            }
        }
    }
    Ok(rt)
}

fn elem_size(t: ElemType) -> usize {
    match t {
        ElemType::F32 => 4,
        _ => 1,
    }
}

/// Shape, type and quantisation of a tensor.
unsafe fn describe(
    api: &sys::Api,
    tensor: sys::LiteRtTensor,
    name: String,
    path: &Path,
) -> Result<(TensorDesc, sys::LiteRtRankedTensorType), SegmentError> {
    let mut type_id: sys::LiteRtTensorTypeId = 0;
    check(
        api.LiteRtGetTensorTypeId(tensor, &mut type_id),
        "tensor type",
        path,
    )?;
    if type_id != sys::kLiteRtRankedTensorType {
        return Err(SegmentError::Architecture(format!(
            "{}: tensor `{name}` has no fixed rank",
            path.display()
        )));
    }
    let mut ty = sys::LiteRtRankedTensorType::default();
    check(
        api.LiteRtGetRankedTensorType(tensor, &mut ty),
        "tensor shape",
        path,
    )?;
    let rank = ty.layout.rank().min(ty.layout.dimensions.len());
    let mut shape = Vec::with_capacity(rank);
    for &d in &ty.layout.dimensions[..rank] {
        if d <= 0 {
            return Err(SegmentError::Architecture(format!(
                "{}: tensor `{name}` has a dynamic dimension ({:?}); export with a fixed size",
                path.display(),
                &ty.layout.dimensions[..rank]
            )));
        }
        shape.push(d as usize);
    }
    let dtype = match ty.element_type {
        sys::kLiteRtElementTypeFloat32 => ElemType::F32,
        sys::kLiteRtElementTypeInt8 => ElemType::I8,
        sys::kLiteRtElementTypeUInt8 => ElemType::U8,
        sys::kLiteRtElementTypeFloat16 => ElemType::Other("float16"),
        sys::kLiteRtElementTypeInt16 => ElemType::Other("int16"),
        sys::kLiteRtElementTypeInt32 => ElemType::Other("int32"),
        _ => ElemType::Other("an unsupported element type"),
    };
    let mut q: sys::LiteRtQuantizationTypeId = 0;
    check(
        api.LiteRtGetQuantizationTypeId(tensor, &mut q),
        "quantisation",
        path,
    )?;
    let quant = if q == sys::kLiteRtQuantizationPerTensor {
        let mut p = sys::LiteRtQuantizationPerTensor {
            scale: 0.0,
            zero_point: 0,
        };
        check(
            api.LiteRtGetPerTensorQuantization(tensor, &mut p),
            "quantisation parameters",
            path,
        )?;
        Some((p.scale, p.zero_point as i32))
    } else if q == sys::kLiteRtQuantizationNone {
        None
    } else {
        return Err(SegmentError::Architecture(format!(
            "{}: tensor `{name}` is quantised per channel or block; inputs and outputs must be \
             float or per-tensor int8",
            path.display()
        )));
    };
    Ok((
        TensorDesc {
            name,
            shape,
            dtype,
            quant,
        },
        ty,
    ))
}

impl LiteRt {
    fn copy_out(&mut self, i: usize) -> Result<(), SegmentError> {
        let api = self.api;
        let buf = self.outputs[i];
        let dst = &mut self.output_data[i];
        unsafe {
            let mut addr: *mut std::ffi::c_void = ptr::null_mut();
            let st =
                api.LiteRtLockTensorBuffer(buf, &mut addr, sys::kLiteRtTensorBufferLockModeRead);
            if st != sys::kLiteRtStatusOk || addr.is_null() {
                return Err(SegmentError::BadInput(format!(
                    "LiteRT: cannot read output `{}` (status {st})",
                    self.output_desc[i].name
                )));
            }
            ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len());
            api.LiteRtUnlockTensorBuffer(buf);
        }
        Ok(())
    }
}

impl Runtime for LiteRt {
    fn input(&self) -> &TensorDesc {
        &self.input_desc
    }

    fn outputs(&self) -> &[TensorDesc] {
        &self.output_desc
    }

    fn set_input(&mut self, bytes: &[u8]) -> Result<(), SegmentError> {
        let want =
            self.input_desc.shape.iter().product::<usize>() * elem_size(self.input_desc.dtype);
        if bytes.len() != want {
            return Err(SegmentError::BadInput(format!(
                "input `{}` takes {want} bytes, got {}",
                self.input_desc.name,
                bytes.len()
            )));
        }
        let api = self.api;
        unsafe {
            let mut addr: *mut std::ffi::c_void = ptr::null_mut();
            let st = api.LiteRtLockTensorBuffer(
                self.inputs[0],
                &mut addr,
                sys::kLiteRtTensorBufferLockModeWrite,
            );
            if st != sys::kLiteRtStatusOk || addr.is_null() {
                return Err(SegmentError::BadInput(format!(
                    "LiteRT: cannot write input `{}` (status {st})",
                    self.input_desc.name
                )));
            }
            ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, want);
            api.LiteRtUnlockTensorBuffer(self.inputs[0]);
        }
        Ok(())
    }

    fn invoke(&mut self) -> Result<(), SegmentError> {
        let api = self.api;
        let st = unsafe {
            api.LiteRtRunCompiledModel(
                self.compiled,
                0,
                self.inputs.len(),
                self.inputs.as_mut_ptr(),
                self.outputs.len(),
                self.outputs.as_mut_ptr(),
            )
        };
        if st != sys::kLiteRtStatusOk {
            return Err(SegmentError::BadInput(format!(
                "LiteRT: running the model failed (status {st})"
            )));
        }
        for i in 0..self.outputs.len() {
            self.copy_out(i)?;
        }
        Ok(())
    }

    fn output(&self, i: usize) -> Result<&[u8], SegmentError> {
        self.output_data
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| SegmentError::BadInput(format!("no output {i}")))
    }
}

impl Drop for LiteRt {
    fn drop(&mut self) {
        let api = self.api;
        unsafe {
            for &b in self.inputs.iter().chain(&self.outputs) {
                api.LiteRtDestroyTensorBuffer(b);
            }
            if !self.compiled.is_null() {
                api.LiteRtDestroyCompiledModel(self.compiled);
            }
            if !self.options.is_null() {
                api.LiteRtDestroyOptions(self.options);
            }
            if !self.model.is_null() {
                api.LiteRtDestroyModel(self.model);
            }
            if !self.env.is_null() {
                api.LiteRtDestroyEnvironment(self.env);
            }
        }
    }
}
