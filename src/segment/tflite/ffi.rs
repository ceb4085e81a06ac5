//! The part of LiteRT's C API (`litert/c/*.h`, LiteRT 2.x) this backend calls, declared by hand:
//! two dozen functions and three plain structs that the headers declare ABI stable
//! (`LiteRtLayout` is 68 bytes with `dimensions` at offset 4). Linked from `libLiteRt.so`
//! (build.rs). Checked against the v2.2.0 headers (`litert/c/*.h`) and run against the 2.3.0
//! library that scripts/tflite.sh pins; the C API is not frozen (2.2 added the environment
//! argument of `LiteRtCreateModelFromFile`), so moving the pin means re-checking these.

#![allow(non_upper_case_globals, non_snake_case, non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uint, c_void};

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

extern "C" {
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
