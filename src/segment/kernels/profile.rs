//! Per-layer timing of the convolutions and the network's other native ops (concatenations,
//! SPPF's pools, the Proto's upsampling, the head's decode), for `edgesift bench-model --layers`: which layers a
//! frame's time goes to on this CPU, at this size and dtype (what `trtexec --dumpProfile` or
//! onnxruntime's profiler tell their users). Off unless switched on; then each convolution
//! appends one record per call. The cost when off is one relaxed atomic load per call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static RECORDS: Mutex<Vec<LayerTime>> = Mutex::new(Vec::new());

/// One call of one op.
#[derive(Debug, Clone)]
pub struct LayerTime {
    /// What ran, e.g. `conv f32 winograd-f4`, `conv int8`, `concat`.
    pub op: &'static str,
    /// For a convolution `c_in -> c_out kxk /s HxW` (the input map).
    pub shape: String,
    /// Multiply-adds of the layer as a direct convolution (0 for ops without products).
    pub macs: u64,
    /// Wall-clock time of the call (all threads working on it).
    pub time: Duration,
}

/// Starts (`true`) or stops recording.
pub fn set_layer_profiling(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// The records so far, in call order, and a fresh start.
pub fn take_layer_times() -> Vec<LayerTime> {
    std::mem::take(&mut *RECORDS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The start of a call, when recording.
pub(super) fn start() -> Option<Instant> {
    ON.load(Ordering::Relaxed).then(Instant::now)
}

/// Ends a call started by [`start`]; `what` names it (only evaluated when recording).
pub(super) fn record(start: Option<Instant>, what: impl FnOnce() -> (&'static str, String, u64)) {
    if let Some(t0) = start {
        let time = t0.elapsed();
        let (op, shape, macs) = what();
        RECORDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(LayerTime {
                op,
                shape,
                macs,
                time,
            });
    }
}

/// `c_in -> c_out kxk /s HxW` and the multiply-adds of a convolution with "same" padding.
pub(super) fn conv_shape(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    h: usize,
    w: usize,
) -> (String, u64) {
    let o = |v: usize| (v + 2 * (k / 2) - k) / stride + 1;
    let macs = (c_in * c_out * k * k * o(h) * o(w)) as u64;
    (
        format!("{c_in:>3} -> {c_out:<3} {k}x{k} /{stride} {h}x{w}"),
        macs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_while_on() {
        // Other tests run convolutions concurrently: count only this test's records.
        let mine = |v: Vec<LayerTime>| v.into_iter().filter(|r| r.op == "test-op").count();
        record(start(), || ("test-op", String::new(), 1));
        set_layer_profiling(true);
        let t = start();
        assert!(t.is_some());
        record(t, || ("test-op", "x".into(), 2));
        set_layer_profiling(false);
        record(start(), || ("test-op", String::new(), 3));
        assert_eq!(mine(take_layer_times()), 1);
        assert_eq!(
            conv_shape(16, 32, 3, 2, 320, 320).1,
            16 * 32 * 9 * 160 * 160
        );
    }
}
