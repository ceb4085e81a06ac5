//! Borrowing the f32 data of CPU tensors directly, for the kernels that are plain functions of
//! whole tensors (concatenation, pooling, the head's decode) rather than candle custom ops.

use candle_core::{CpuStorage, Device, Storage, Tensor};

/// A contiguous `[b, c, h, w]` f32 tensor's data, borrowed from its storage.
#[derive(Debug)]
pub(super) struct Planes<'a> {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: &'a [f32],
    pub device: &'a Device,
}

impl Planes<'_> {
    /// Channel `c` of image `b`: `h * w` values.
    pub fn plane(&self, b: usize, c: usize) -> &[f32] {
        let hw = self.h * self.w;
        let at = (b * self.c + c) * hw;
        &self.data[at..at + hw]
    }
}

/// Runs `f` on the data of `tensors` when every one is a contiguous 4-D f32 tensor on the CPU;
/// `None` otherwise (the caller then uses candle's ops). 3-D tensors `[b, c, n]` count as
/// `[b, c, 1, n]`.
///
/// The storages are read-locked for the duration of `f`; two tensors sharing one storage (two
/// views of one buffer) would lock it twice, which candle's lock allows while nobody writes.
pub(super) fn with_f32<R>(tensors: &[&Tensor], f: impl FnOnce(&[Planes<'_>]) -> R) -> Option<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut planes = Vec::with_capacity(tensors.len());
    for ((storage, layout), t) in guards.iter().zip(tensors) {
        let Storage::Cpu(CpuStorage::F32(data)) = &**storage else {
            return None;
        };
        let (start, end) = layout.contiguous_offsets()?;
        let (b, c, h, w) = match *t.dims() {
            [b, c, h, w] => (b, c, h, w),
            [b, c, n] => (b, c, 1, n),
            _ => return None,
        };
        planes.push(Planes {
            b,
            c,
            h,
            w,
            data: &data[start..end],
            device: t.device(),
        });
    }
    Some(f(&planes))
}

/// An output buffer's address shared by the tasks of a parallel loop that each write their own
/// disjoint part of it (the buffer outlives the loop, and nothing reads it meanwhile).
#[derive(Debug, Clone, Copy)]
pub(super) struct OutPtr(pub *mut f32);

impl OutPtr {
    /// The address (a method, so that closures capture the whole `Sync` wrapper and not just
    /// its raw-pointer field).
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: only the address is shared; the users guarantee disjoint writes within the buffer's
// lifetime.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}
