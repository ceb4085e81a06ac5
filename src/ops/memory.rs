//! The process's resident memory as the kernel counts it (`/proc/self/status`), for the metrics
//! endpoint and the exit summary of `edgesift run`; and the malloc setting the daemon runs with
//! ([`tune_allocator`]).

/// Resident set size now and at its highest, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentMemory {
    /// `VmRSS`.
    pub now: u64,
    /// `VmHWM`: the peak since the process started.
    pub peak: u64,
}

impl ResidentMemory {
    /// This process's figures; `None` where `/proc` is not mounted (or not Linux).
    pub fn current() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    /// Reads `VmRSS` and `VmHWM` (kB) from the text of `/proc/<pid>/status`.
    fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim();
                v.parse::<u64>().ok().map(|kb| kb * 1024)
            })
        };
        Some(Self {
            now: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

/// glibc malloc settings for a process that runs the network frame after frame.
///
/// - **Arenas**: at most two per core (at least 2, at most 8) instead of eight per core. Each
///   thread that allocates gets an arena of its own until the cap is reached, and free memory
///   in one arena serves no other. The daemon runs a dozen threads (pipeline stages, rayon
///   workers, metrics, signals, watchdog) on boards with 2 to 8 cores, few of which allocate
///   much; with a cap they share, and memory freed by one thread is reused by the next.
/// - **Large blocks from the heap, kept between frames**: the mmap and trim thresholds fixed at
///   64 MiB. By default glibc serves blocks above a (moving) threshold with
///   `mmap` and returns the heap's top once it is free, so every frame's activations (up to
///   tens of MB) and frame images came as fresh pages: a page fault and a zeroed page per 4 KiB,
///   every frame. Measured (docs/PERFORMANCE.md): the daemon at 416 went from 15.6 to 18 fps,
///   its steady resident memory from 74-84 to 103 MiB, its peak unchanged (125-129 MiB); the
///   pipeline still hands free memory back every 30 s (`malloc_trim`).
///
/// Called once, before any thread starts. A setting given in the environment wins
/// (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or the matching
/// `glibc.malloc.*` tunable in `GLIBC_TUNABLES`), so other values can be tried without
/// rebuilding.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        let given = |env: &str, tunable: &str| {
            std::env::var_os(env).is_some() || tunables.contains(tunable)
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let settings = [
            (
                "MALLOC_ARENA_MAX",
                "arena_max",
                libc::M_ARENA_MAX,
                (2 * cores).clamp(2, 8) as libc::c_int,
            ),
            (
                "MALLOC_MMAP_THRESHOLD_",
                "mmap_threshold",
                libc::M_MMAP_THRESHOLD,
                LARGE_BLOCK_BYTES,
            ),
            (
                "MALLOC_TRIM_THRESHOLD_",
                "trim_threshold",
                libc::M_TRIM_THRESHOLD,
                LARGE_BLOCK_BYTES,
            ),
        ];
        for (env, tunable, param, value) in settings {
            if !given(env, tunable) {
                // SAFETY: mallopt only changes malloc's parameters; it is thread-safe in glibc.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        }
    }
}

/// Blocks up to this size come from the heap and stay there when freed (see
/// [`tune_allocator`]): above the largest activation of the network at 640 (13 MB) and a 4K
/// frame image (25 MB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const LARGE_BLOCK_BYTES: libc::c_int = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text =
            "Name:\tedgesift\nVmPeak:\t  900000 kB\nVmHWM:\t  145508 kB\nVmRSS:\t  134888 kB\n\
                    RssAnon:\t  122668 kB\n";
        let m = ResidentMemory::parse(text).unwrap();
        assert_eq!(m.now, 134_888 * 1024);
        assert_eq!(m.peak, 145_508 * 1024);
        assert_eq!(ResidentMemory::parse("VmRSS:\t 1 kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_resident_memory() {
        let m = ResidentMemory::current().unwrap();
        assert!(m.now > 0 && m.peak >= m.now, "{m:?}");
    }
}
