//! The one CPU pool every stage computes on.
//!
//! The network's kernels split each layer into tasks on rayon's global pool, one worker per
//! core. A stage that computes on a thread of its own (converting a camera frame, rendering a
//! synthetic one, encoding a kept sample) takes a core from under a worker in the middle of a
//! layer: that worker's task stops until the stage's thread yields, and the other workers,
//! having run out of tasks, wait for it at the layer's end. On a two-core board a 1-2 ms
//! conversion 30 times a second cost the model about three times its own CPU time (the pipeline
//! bench, docs/PERFORMANCE.md). Run as a job on the same pool instead, the work is taken up by a
//! worker between tasks, and the layer's remaining tasks go to the others: nothing waits.

/// Runs `f` on a worker of rayon's global pool and returns its result, blocking the calling
/// thread meanwhile (on a worker already, it runs in place). For CPU work only: blocking I/O
/// or sleeping inside `f` would hold a worker the network needs.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Starts the pool now, its threads named `edgesift-poolN` (as `top -H` and the pipeline bench
/// show them; otherwise they would inherit the name of whichever stage's thread first used the
/// pool). `RAYON_NUM_THREADS` still sets their number. Nothing happens if the pool is running.
pub fn start() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("edgesift-pool{i}"))
        .build_global();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_pool_worker_and_returns_the_result() {
        assert!(rayon::current_thread_index().is_none());
        let (index, sum) = on_pool(|| (rayon::current_thread_index(), (1..=10).sum::<u32>()));
        assert!(index.is_some(), "ran on the calling thread");
        assert_eq!(sum, 55);
        // From a worker it runs in place.
        let nested = on_pool(|| {
            let me = rayon::current_thread_index();
            on_pool(move || rayon::current_thread_index() == me)
        });
        assert!(nested);
    }
}
