//! `edgesift run` as systemd runs it: sd_notify to a socket bound here, SIGTERM and SIGHUP, and
//! the metrics endpoint, against the real binary on the synthetic source.

use crate::util::data;
use edgesift::store::{CheckOptions, Query, StoreReader};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Model load plus the first frames, on a loaded 2-core CI machine.
const START: Duration = Duration::from_secs(120);

/// A bound datagram socket standing in for systemd's notify socket.
struct FakeSystemd {
    sock: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl FakeSystemd {
    fn new(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram starting with `want`, keeping everything received on the way.
    fn expect(&mut self, want: &str, within: Duration, daemon: &mut Daemon) {
        let t0 = Instant::now();
        let mut buf = [0u8; 4096];
        while t0.elapsed() < within {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.starts_with(want);
                self.seen.push(msg);
                if hit {
                    return;
                }
            }
            if let Some(status) = daemon.try_status() {
                panic!(
                    "edgesift exited ({status}) before sending {want}; sent {:?}\n{}",
                    self.seen,
                    daemon.log()
                );
            }
        }
        panic!(
            "no {want} within {within:?}; sent {:?}\n{}",
            self.seen,
            daemon.log()
        );
    }
}

/// A running `edgesift run`, its stderr collected line by line.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    exit: Option<ExitStatus>,
}

impl Daemon {
    fn start(config: &Path, notify: Option<&Path>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgesift"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("EDGESIFT_CONFIG")
            .env_remove("EDGESIFT_DATA_DIR")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_PID")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(sock) = notify {
            // WatchdogSec=0.5: pings every 250 ms.
            cmd.env("NOTIFY_SOCKET", sock)
                .env("WATCHDOG_USEC", "500000");
        } else {
            cmd.env_remove("WATCHDOG_USEC");
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            stderr,
            exit: None,
        }
    }

    fn log(&self) -> String {
        format!("stderr:\n{}", self.stderr.lock().unwrap().join("\n"))
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().unwrap();
        }
        self.exit
    }

    /// Waits for a stderr line containing every one of `parts`; returns it.
    fn wait_for_log(&mut self, parts: &[&str], within: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.clone();
            }
            if let Some(status) = self.try_status() {
                // The reader thread may still be catching up with the last lines.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(l) = self
                    .stderr
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| parts.iter().all(|p| l.contains(p)))
                {
                    return l.clone();
                }
                panic!(
                    "edgesift exited ({status}) before logging {parts:?}\n{}",
                    self.log()
                );
            }
            assert!(
                t0.elapsed() < within,
                "no log line with {parts:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped before `wait`.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the exit; returns the status and stdout.
    fn wait(&mut self, within: Duration) -> (ExitStatus, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.try_status() {
                break s;
            }
            if t0.elapsed() > within {
                let _ = self.child.kill();
                panic!("edgesift did not exit within {within:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        (status, out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A config for an endless synthetic run that keeps frames often: `extra` is appended.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "[source]\nkind = \"synthetic\"\n\
         [source.synthetic]\nwidth = 320\nheight = 180\nfps = 15.0\nrealtime = true\nseed = 5\n\
         [model]\npath = {model:?}\nimgsz = 128\nconf = 0.05\n\
         [store]\ndir = {store:?}\nmin_free_bytes = 0\nfsync = true\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\
         {extra}\n",
        model = data("parity/v8n_coffee_320.safetensors")
            .display()
            .to_string(),
        store = dir.join("data").display().to_string(),
    );
    let path = dir.join("edgesift.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn stored(dir: &Path) -> usize {
    StoreReader::open(dir)
        .and_then(|r| r.ids(&Query::default()))
        .map(|ids| ids.len())
        .unwrap_or(0)
}

#[test]
fn systemd_sees_ready_watchdog_stopping_and_sigterm_drains_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "");
    let mut systemd = FakeSystemd::new(tmp.path());
    let mut d = Daemon::start(&cfg, Some(&systemd.path));

    systemd.expect("READY=1", START, &mut d);
    // Pings come from the pipeline's heartbeats, with a status line.
    systemd.expect("WATCHDOG=1", Duration::from_secs(10), &mut d);
    systemd.expect("STATUS=capture ", Duration::from_secs(20), &mut d);

    // SIGTERM while samples are being written.
    let data = tmp.path().join("data");
    let t0 = Instant::now();
    while stored(&data) < 2 {
        assert!(t0.elapsed() < START, "nothing stored\n{}", d.log());
        assert!(d.try_status().is_none(), "exited early\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    d.signal(libc::SIGTERM);
    systemd.expect("STOPPING=1", Duration::from_secs(10), &mut d);
    let (status, summary) = d.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}\n{}", d.log());
    let err = d.log();
    assert!(!err.contains("panicked"), "{err}");
    assert!(summary.contains("kept"), "no summary on stdout: {summary}");

    // Every sample the run started is complete and indexed.
    let check = edgesift::store::check_dir(&data, &CheckOptions::default()).unwrap();
    assert!(check.is_clean(), "check found: {:#?}", check.issues);
    let out = Command::new(env!("CARGO_BIN_EXE_edgesift"))
        .args(["check", "--dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edgesift check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stored(&data) >= 2);
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "");
    let mut systemd = FakeSystemd::new(tmp.path());
    let mut d = Daemon::start(&cfg, Some(&systemd.path));
    systemd.expect("READY=1", START, &mut d);

    // A value out of range: refused, naming the key; the daemon keeps running.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("min_free_bytes = 0", "jpeg_quality = 500"),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    systemd.expect("RELOADING=1", Duration::from_secs(10), &mut d);
    let line = d.wait_for_log(
        &["reload failed", "store.jpeg_quality"],
        Duration::from_secs(10),
    );
    assert!(line.contains("previous configuration"), "{line}");
    systemd.expect("READY=1", Duration::from_secs(10), &mut d);
    systemd.expect("WATCHDOG=1", Duration::from_secs(10), &mut d);
    assert!(
        d.try_status().is_none(),
        "died on a broken reload\n{}",
        d.log()
    );

    // Broken TOML too.
    std::fs::write(&cfg, "[store\n").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log(&["reload failed", "line 1"], Duration::from_secs(10));

    // A valid change is applied by the store between two frames.
    std::fs::write(
        &cfg,
        good.replace(
            "min_free_bytes = 0",
            "min_free_bytes = 0\njpeg_quality = 50",
        ),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for_log(
        &["configuration reloaded", "store"],
        Duration::from_secs(20),
    );

    d.signal(libc::SIGTERM);
    let (status, _) = d.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}\n{}", d.log());
    let check =
        edgesift::store::check_dir(&tmp.path().join("data"), &CheckOptions::default()).unwrap();
    assert!(check.is_clean(), "check found: {:#?}", check.issues);
}

/// One GET on a fresh connection: status code and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn metrics_endpoint_answers_on_loopback_with_the_documented_series() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "");
    let mut systemd = FakeSystemd::new(tmp.path());
    let mut d = Daemon::start(&cfg, Some(&systemd.path));
    let line = d.wait_for_log(&["metrics endpoint listening"], START);
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr= in {line}"));
    assert!(addr.ip().is_loopback(), "{addr}");

    systemd.expect("READY=1", START, &mut d);
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_string()));

    // Wait until frames went through every stage (a kept sample counts at selection before the
    // store has written it), then scrape.
    let value = |body: &str, name: &str| -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    let t0 = Instant::now();
    let body = loop {
        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        let positive = |name| value(&body, name).is_some_and(|v| v > 0.0);
        if positive("edgesift_frames_total{stage=\"store\"}") && positive("edgesift_store_bytes") {
            break body;
        }
        assert!(t0.elapsed() < START, "nothing stored:\n{body}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(300));
    };
    for series in [
        "edgesift_frames_total{stage=\"capture\"}",
        "edgesift_frames_total{stage=\"segment\"}",
        "edgesift_frames_total{stage=\"select\"}",
        "edgesift_frames_total{stage=\"store\"}",
        "edgesift_frames_dropped_total{stage=\"capture\"}",
        "edgesift_errors_total{stage=\"segment\"}",
        "edgesift_frames_skipped_total",
        "edgesift_kept_samples_total",
        "edgesift_kept_samples_by_reason_total{reason=",
        "edgesift_evicted_samples_total",
        "edgesift_stage_latency_seconds_bucket{stage=\"segment\",le=\"0.1\"}",
        "edgesift_stage_latency_seconds_count{stage=\"store\"}",
        "edgesift_decision_lag_seconds_bucket{le=",
        "edgesift_store_bytes",
        "edgesift_store_free_bytes",
        "edgesift_model_load_seconds",
        "edgesift_pipeline_live 1",
        "edgesift_uptime_seconds",
        "edgesift_build_info{version=",
    ] {
        assert!(body.contains(series), "missing {series} in\n{body}");
    }
    // Counters are consistent with each other.
    let v = |name: &str| value(&body, name).unwrap_or_else(|| panic!("no value for {name}"));
    assert!(
        v("edgesift_frames_total{stage=\"capture\"}")
            >= v("edgesift_frames_total{stage=\"segment\"}")
    );
    assert!(v("edgesift_kept_samples_total") >= v("edgesift_frames_total{stage=\"store\"}"));
    assert!(v("edgesift_store_bytes") > 0.0);

    d.signal(libc::SIGTERM);
    let (status, _) = d.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}\n{}", d.log());
    // The port is closed with the process.
    assert!(TcpStream::connect(addr).is_err());
}

/// The shipped unit passes `systemd-analyze verify` (with ExecStart pointing at the binary under
/// test, since /usr/bin/edgesift is not installed here).
#[test]
fn the_service_unit_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/edgesift.service"),
    )
    .unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=edgesift",
        "SupplementaryGroups=video",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/edgesift",
        "DeviceAllow=char-video4linux rw",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(key)), "{key} missing");
    }
    let unit = unit.replace("/usr/bin/edgesift", env!("CARGO_BIN_EXE_edgesift"));
    let path = tmp.path().join("edgesift.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) is needed to verify the unit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify:\n{err}"
    );
}

/// Under systemd (stderr is the stream `$JOURNAL_STREAM` names) log lines carry a syslog
/// priority for journald and no timestamp or colour; `[log] format = "json"` gives JSON lines.
#[test]
fn logs_are_journald_lines_under_systemd_and_json_on_request() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let run = |cfg: &Path, name: &str, journal: bool| -> String {
        let log = tmp.path().join(name);
        let file = std::fs::File::create(&log).unwrap();
        let meta = file.metadata().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgesift"));
        cmd.args(["run", "--max-frames", "3", "--config"])
            .arg(cfg)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(file);
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let status = cmd.status().unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{text}");
        text
    };

    let cfg = write_config(tmp.path(), "");
    let text = run(&cfg, "journal.log", true);
    assert!(text.lines().count() >= 3, "{text}");
    for line in text.lines() {
        let p = line.get(..3).unwrap_or("");
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&p),
            "no priority: {line}"
        );
        assert!(!line.contains('\x1b') && !line.contains("Z "), "{line}");
    }
    assert!(
        text.contains("<6> INFO edgesift::cli::run: running"),
        "{text}"
    );

    let cfg = write_config(tmp.path(), "[log]\nformat = \"json\"\n");
    let text = run(&cfg, "json.log", true);
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}
