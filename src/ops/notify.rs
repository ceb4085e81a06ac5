//! The sd_notify protocol: datagrams of `KEY=value` lines sent to the socket named by
//! `$NOTIFY_SOCKET` (see `man sd_notify`). A path, or `@name` for an abstract socket. Without the
//! variable (not started by systemd, or `Type=simple`) every call does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// A connection to the service manager, or nothing.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`. A malformed value is logged and treated as absent: not being able
    /// to talk to systemd must not stop the daemon (systemd then times the start out itself).
    pub fn from_env() -> Self {
        let var = std::env::var_os("NOTIFY_SOCKET");
        Self::new(var.as_deref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring NOTIFY_SOCKET");
            Self::disabled()
        })
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self { target: None }
    }

    /// To the socket `addr` (a path, or `@name` for the abstract namespace); `None` disables.
    pub fn new(addr: Option<&OsStr>) -> io::Result<Self> {
        let Some(addr) = addr.filter(|a| !a.is_empty()) else {
            return Ok(Self::disabled());
        };
        let bytes = addr.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => abstract_addr(name)?,
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(addr)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "NOTIFY_SOCKET={} is neither an absolute path nor @abstract",
                        addr.to_string_lossy()
                    ),
                ))
            }
        };
        let sock = UnixDatagram::unbound()?;
        // A service manager that stops reading (or a full queue) must never stall the daemon:
        // a notification that cannot be queued now is dropped and logged.
        sock.set_nonblocking(true)?;
        Ok(Self {
            target: Some((sock, addr)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated assignments). `Ok(false)` when disabled.
    pub fn send(&self, state: &str) -> io::Result<bool> {
        let Some((sock, addr)) = &self.target else {
            return Ok(false);
        };
        sock.send_to_addr(state.as_bytes(), addr)?;
        Ok(true)
    }

    /// Like [`send`](Self::send), logging a failure instead of returning it: a lost
    /// notification is systemd's to notice (start timeout, watchdog), never a reason to stop.
    fn send_logged(&self, state: &str) {
        if let Err(e) = self.send(state) {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    /// Like [`send_logged`](Self::send_logged), but a full socket queue (a busy service
    /// manager, `EAGAIN`) is retried for up to about a second: READY, STOPPING, RELOADING and
    /// WATCHDOG change what systemd does, so they are worth a short wait; never an unbounded
    /// one, which is why the socket is non-blocking.
    fn send_state(&self, state: &str) {
        let mut delay = Duration::from_millis(2);
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.send(state) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
                Err(e) => {
                    tracing::warn!(error = %e, state, "sd_notify failed");
                    return;
                }
                Ok(_) => return,
            }
        }
    }

    /// Startup finished: the model is loaded and the source is open.
    pub fn ready(&self) {
        self.send_state("READY=1");
    }

    /// The pipeline is alive (see [`super::Watchdog`] for when this is sent).
    pub fn watchdog(&self) {
        self.send_state("WATCHDOG=1");
    }

    /// A one-line status for `systemctl status`.
    pub fn status(&self, line: &str) {
        // One line: a newline would start another assignment.
        let line = line.replace('\n', " ");
        self.send_logged(&format!("STATUS={line}"));
    }

    /// Shutdown has begun (draining).
    pub fn stopping(&self) {
        self.send_state("STOPPING=1");
    }

    /// A configuration reload begins; [`ready`](Self::ready) ends it.
    pub fn reloading(&self) {
        let usec = crate::pipeline::now().monotonic.as_micros();
        self.send_state(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// How often systemd expects `WATCHDOG=1`, from `$WATCHDOG_USEC` (set by `WatchdogSec=`), when
/// it is meant for this process (`$WATCHDOG_PID` absent or ours). `None` without a watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// A bound datagram socket standing in for systemd.
    pub(crate) struct FakeSystemd {
        pub sock: UnixDatagram,
        _dir: tempfile::TempDir,
        pub path: std::path::PathBuf,
    }

    impl FakeSystemd {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notify");
            let sock = UnixDatagram::bind(&path).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            Self {
                sock,
                _dir: dir,
                path,
            }
        }

        pub(crate) fn notifier(&self) -> Notifier {
            Notifier::new(Some(self.path.as_os_str())).unwrap()
        }

        pub(crate) fn recv(&self) -> String {
            let mut buf = [0u8; 4096];
            let n = self.sock.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        }

        /// Every datagram already waiting.
        pub(crate) fn drain(&self) -> Vec<String> {
            self.sock.set_nonblocking(true).unwrap();
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.sock.recv(&mut buf) {
                out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            self.sock.set_nonblocking(false).unwrap();
            out
        }
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let fake = FakeSystemd::new();
        let n = fake.notifier();
        assert!(n.enabled());
        n.ready();
        assert_eq!(fake.recv(), "READY=1");
        n.watchdog();
        assert_eq!(fake.recv(), "WATCHDOG=1");
        n.status("kept 3\nstored 1 MiB");
        assert_eq!(fake.recv(), "STATUS=kept 3 stored 1 MiB");
        n.stopping();
        assert_eq!(fake.recv(), "STOPPING=1");
        n.reloading();
        let r = fake.recv();
        assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "edgesift-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::new(Some(OsStr::from_bytes(format!("@{name}").as_bytes()))).unwrap();
        n.ready();
        let mut buf = [0u8; 64];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        let n = Notifier::new(None).unwrap();
        assert!(!n.enabled());
        assert!(!n.send("READY=1").unwrap());
        assert!(!Notifier::new(Some(OsStr::new(""))).unwrap().enabled());
        assert!(Notifier::new(Some(OsStr::new("relative/path"))).is_err());
    }

    #[test]
    fn a_vanished_socket_is_an_error_not_a_panic() {
        let fake = FakeSystemd::new();
        let n = fake.notifier();
        std::fs::remove_file(&fake.path).unwrap();
        assert!(n.send("READY=1").is_err());
        n.ready(); // logged, not raised
    }

    #[test]
    fn watchdog_interval_is_for_this_process_only() {
        let s = Duration::from_secs;
        assert_eq!(parse_watchdog(Some("30000000"), None, 7), Some(s(30)));
        assert_eq!(parse_watchdog(Some("30000000"), Some("7"), 7), Some(s(30)));
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }
}
