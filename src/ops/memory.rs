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

/// Caps glibc's malloc arenas at two per core (at least 2, at most 8) instead of eight per core.
///
/// Each thread that allocates gets an arena of its own until the cap is reached, and free memory
/// in one arena serves no other. The daemon runs a dozen threads (pipeline stages, rayon
/// workers, metrics, signals, watchdog) on boards with 2 to 8 cores, few of which allocate much;
/// with a cap they share, and memory freed by one thread is reused by the next. (Large blocks
/// such as frame images are a separate matter: the pipeline trims after freeing them.)
///
/// Called once, before the pipeline's threads start. `MALLOC_ARENA_MAX` or a
/// `glibc.malloc.arena_max` tunable in `GLIBC_TUNABLES` wins, so other values can be tried
/// without rebuilding.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let from_env = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !from_env {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            // SAFETY: mallopt only changes malloc's parameters; it is thread-safe in glibc.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, (2 * cores).clamp(2, 8) as libc::c_int);
            }
        }
    }
}

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
