//! The Prometheus endpoint: `/metrics` in the Prometheus text format, `/healthz` for liveness.
//!
//! Nothing is counted twice: a collector reads the pipeline's own [`crate::pipeline::Stats`]
//! (and the filesystem, for free space and temperatures) at scrape time. The server is a plain
//! blocking `TcpListener` on one thread answering one short request at a time, which is all a
//! scraper polling every few seconds needs.
//!
//! Series (all prefixed `edgesift_`):
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `frames_total` | counter | `stage` | items each stage finished: frames captured, segmented, decided; samples stored |
//! | `frames_dropped_total` | counter | `stage` | frames dropped (capture: the model was busy) |
//! | `errors_total` | counter | `stage` | per-item errors (bad frame, failed inference, failed write) |
//! | `frames_skipped_total` | counter | | frames selection decided not to keep |
//! | `kept_samples_total` | counter | | frames selection kept |
//! | `kept_samples_by_reason_total` | counter | `reason` | kept frames by reason (a frame may have several) |
//! | `evicted_samples_total` | counter | | samples evicted to respect the quota or the free-space guard |
//! | `stage_latency_seconds` | histogram | `stage` | time per item in each stage |
//! | `decision_lag_seconds` | histogram | | from capture to the keep decision, for kept frames |
//! | `store_bytes` | gauge | | bytes the stored samples take (counted as the quota counts them) |
//! | `store_free_bytes` | gauge | | free space on the filesystem of the store |
//! | `model_load_seconds` | gauge | | how long loading the model took at start-up |
//! | `first_frame_seconds` | gauge | | from the start of the run (model load included) to the first segmented frame |
//! | `resident_memory_bytes` | gauge | | resident set size of the process (`VmRSS`) |
//! | `resident_memory_peak_bytes` | gauge | | highest resident set size so far (`VmHWM`) |
//! | `frame_buffers` | gauge | | frame images alive in the pipeline (queued, held by selection, spare) |
//! | `soc_temperature_celsius` | gauge | `zone`, `type` | each `/sys/class/thermal` zone |
//! | `pipeline_live` | gauge | | 1 while every stage makes progress (what `/healthz` says) |
//! | `uptime_seconds` | gauge | | since the pipeline's statistics started |
//! | `build_info` | gauge | `version` | always 1 |

use super::{Health, Liveness};
use crate::pipeline::{Stage, StageCounters, LATENCY_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// What the collector reads at scrape time.
#[derive(Debug)]
pub struct MetricsSource {
    liveness: Arc<Liveness>,
    store_dir: PathBuf,
    thermal_dir: PathBuf,
    /// `f64` bits; NaN until set.
    model_load_seconds: AtomicU64,
}

impl MetricsSource {
    pub fn new(liveness: Arc<Liveness>, store_dir: &Path) -> Self {
        Self {
            liveness,
            store_dir: store_dir.to_owned(),
            thermal_dir: PathBuf::from("/sys/class/thermal"),
            model_load_seconds: AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    /// Reads temperatures from `dir` instead of `/sys/class/thermal` (tests).
    pub fn with_thermal_dir(mut self, dir: &Path) -> Self {
        self.thermal_dir = dir.to_owned();
        self
    }

    pub fn set_model_load_time(&self, took: Duration) {
        self.model_load_seconds
            .store(took.as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    /// The whole exposition, as `/metrics` returns it.
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PipelineCollector(self.clone())));
        let mut out = String::new();
        // Writing to a String cannot fail, and the collector only fails on a write error.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

#[derive(Debug)]
struct PipelineCollector(Arc<MetricsSource>);

/// Starts one metric family.
fn family<'a>(
    enc: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
    t: MetricType,
) -> Result<MetricEncoder<'a>, fmt::Error> {
    enc.encode_descriptor(name, help, None, t)
}

fn counter(enc: &mut MetricEncoder, v: u64) -> fmt::Result {
    enc.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn histogram(enc: &mut MetricEncoder, c: &StageCounters) -> fmt::Result {
    let h = c.histogram();
    let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
    let buckets: Vec<(f64, u64)> = bounds.zip(h.counts.iter().copied()).collect();
    let count = h.counts.iter().sum();
    enc.encode_histogram::<NoLabelSet>(h.sum.as_secs_f64(), count, &buckets, None)
}

impl Collector for PipelineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let src = &self.0;
        let stats = &src.liveness.control().stats;
        let snap = stats.snapshot();

        let per_stage = |enc: &mut DescriptorEncoder,
                         name: &str,
                         help: &str,
                         get: &dyn Fn(&StageCounters) -> u64|
         -> fmt::Result {
            let mut f = family(enc, name, help, MetricType::Counter)?;
            for s in Stage::ALL {
                let labels = [("stage", s.name())];
                counter(&mut f.encode_family(&labels)?, get(stats.stage(s)))?;
            }
            Ok(())
        };
        per_stage(
            &mut enc,
            "edgesift_frames",
            "Items each stage finished: frames captured, segmented, decided; samples stored.",
            &|c| c.done(),
        )?;
        per_stage(
            &mut enc,
            "edgesift_frames_dropped",
            "Frames dropped by each stage (capture drops the oldest waiting frame when the model is busy).",
            &|c| c.drops(),
        )?;
        per_stage(
            &mut enc,
            "edgesift_errors",
            "Per-item errors of each stage (bad frame, failed inference, failed write).",
            &|c| c.errors(),
        )?;
        counter(
            &mut family(
                &mut enc,
                "edgesift_frames_skipped",
                "Frames selection decided not to keep.",
                MetricType::Counter,
            )?,
            snap.skipped,
        )?;
        counter(
            &mut family(
                &mut enc,
                "edgesift_kept_samples",
                "Frames selection kept.",
                MetricType::Counter,
            )?,
            snap.selected_kept,
        )?;
        {
            let mut f = family(
                &mut enc,
                "edgesift_kept_samples_by_reason",
                "Kept frames by reason; a frame kept for several reasons counts once for each.",
                MetricType::Counter,
            )?;
            for (reason, n) in &snap.kept_by_reason {
                let labels = [("reason", reason.as_str())];
                counter(&mut f.encode_family(&labels)?, *n)?;
            }
        }
        counter(
            &mut family(
                &mut enc,
                "edgesift_evicted_samples",
                "Samples evicted to respect the store quota or the free-space guard.",
                MetricType::Counter,
            )?,
            snap.evicted,
        )?;
        {
            let mut f = family(
                &mut enc,
                "edgesift_stage_latency_seconds",
                "Time each stage spent per item.",
                MetricType::Histogram,
            )?;
            for s in Stage::ALL {
                let labels = [("stage", s.name())];
                histogram(&mut f.encode_family(&labels)?, stats.stage(s))?;
            }
        }
        histogram(
            &mut family(
                &mut enc,
                "edgesift_decision_lag_seconds",
                "From capture to the keep decision, for kept frames.",
                MetricType::Histogram,
            )?,
            &stats.decision_lag,
        )?;
        family(
            &mut enc,
            "edgesift_store_bytes",
            "Bytes the stored samples take, counted as the quota counts them.",
            MetricType::Gauge,
        )?
        .encode_gauge(&snap.stored_bytes)?;
        match crate::store::FreeSpace::free_bytes(&crate::store::Statvfs, &src.store_dir) {
            Ok(free) => family(
                &mut enc,
                "edgesift_store_free_bytes",
                "Free space on the filesystem holding the store.",
                MetricType::Gauge,
            )?
            .encode_gauge(&free)?,
            Err(e) => {
                tracing::debug!(dir = %src.store_dir.display(), error = %e, "no free space for metrics")
            }
        }
        let load = f64::from_bits(src.model_load_seconds.load(Ordering::Relaxed));
        if !load.is_nan() {
            family(
                &mut enc,
                "edgesift_model_load_seconds",
                "How long loading the model took at start-up.",
                MetricType::Gauge,
            )?
            .encode_gauge(&load)?;
        }
        if let Some(first) = snap.first_segmented {
            family(
                &mut enc,
                "edgesift_first_frame_seconds",
                "From the start of the run (model load included) to the first segmented frame.",
                MetricType::Gauge,
            )?
            .encode_gauge(&first.as_secs_f64())?;
        }
        if let Some(mem) = super::ResidentMemory::current() {
            family(
                &mut enc,
                "edgesift_resident_memory_bytes",
                "Resident set size of the process (VmRSS).",
                MetricType::Gauge,
            )?
            .encode_gauge(&mem.now)?;
            family(
                &mut enc,
                "edgesift_resident_memory_peak_bytes",
                "Highest resident set size of the process so far (VmHWM).",
                MetricType::Gauge,
            )?
            .encode_gauge(&mem.peak)?;
        }
        family(
            &mut enc,
            "edgesift_frame_buffers",
            "Frame images alive in the pipeline: queued, held by selection, spare in the pool.",
            MetricType::Gauge,
        )?
        .encode_gauge(&snap.frame_buffers)?;
        let zones = thermal_zones(&src.thermal_dir);
        if !zones.is_empty() {
            let mut f = family(
                &mut enc,
                "edgesift_soc_temperature_celsius",
                "Temperature of each thermal zone the kernel reports.",
                MetricType::Gauge,
            )?;
            for z in &zones {
                let labels = [("zone", z.zone.as_str()), ("type", z.kind.as_str())];
                f.encode_family(&labels)?.encode_gauge(&z.celsius)?;
            }
        }
        let live = matches!(src.liveness.check(), Health::Live);
        family(
            &mut enc,
            "edgesift_pipeline_live",
            "1 while every pipeline stage makes progress (what /healthz reports).",
            MetricType::Gauge,
        )?
        .encode_gauge(&u64::from(live))?;
        family(
            &mut enc,
            "edgesift_uptime_seconds",
            "Seconds since the pipeline's statistics started.",
            MetricType::Gauge,
        )?
        .encode_gauge(&snap.elapsed.as_secs_f64())?;
        let mut f = family(
            &mut enc,
            "edgesift_build_info",
            "The running version; always 1.",
            MetricType::Gauge,
        )?;
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        f.encode_family(&labels)?.encode_gauge(&1u64)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ThermalZone {
    zone: String,
    kind: String,
    celsius: f64,
}

/// `thermal_zone*/temp` (millidegrees Celsius) and `type` under `dir`; zones that cannot be
/// read (some report EINVAL or ENODATA while their sensor sleeps) are left out.
fn thermal_zones(dir: &Path) -> Vec<ThermalZone> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut zones: Vec<ThermalZone> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let zone = e
                .file_name()
                .to_str()?
                .strip_prefix("thermal_zone")?
                .to_string();
            let milli: f64 = std::fs::read_to_string(e.path().join("temp"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let kind = std::fs::read_to_string(e.path().join("type"))
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
            Some(ThermalZone {
                zone,
                kind,
                celsius: milli / 1000.0,
            })
        })
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    zones
}

/// The HTTP server thread; stopping (or dropping) it closes the port.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Largest request head read; anything longer is answered 431 and closed.
const MAX_REQUEST: usize = 8 * 1024;
/// A client that does not send its request (or read the answer) within this is dropped, so that
/// one stuck connection cannot hold up scrapes for long.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl MetricsServer {
    /// Binds `listen` and serves on a thread.
    pub fn start(listen: SocketAddr, source: Arc<MetricsSource>) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("edgesift-metrics".into())
                .spawn(move || serve(listener, &source, &stop))?
        };
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the actual port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = t.join();
        }
        // Otherwise leave the thread: it ends with the process.
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: TcpListener, source: &Arc<MetricsSource>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                if let Err(e) = answer(stream, source) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
            Err(e) => {
                // EMFILE and the like: do not spin.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Reads one request head and writes one response, then closes.
fn answer(mut stream: TcpStream, source: &Arc<MetricsSource>) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST {
            return respond(&mut stream, 431, "text/plain", "request too large\n", true);
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let body_wanted = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET\n", true);
    }
    match path {
        "/metrics" => respond(
            &mut stream,
            200,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            &source.render(),
            body_wanted,
        ),
        "/healthz" => {
            let (code, body) = match source.liveness.check() {
                Health::Live => (200, "ok\n".to_string()),
                Health::Starting => (503, "starting\n".to_string()),
                Health::Stopping => (503, "stopping\n".to_string()),
                Health::Stalled(s) => (
                    503,
                    format!(
                        "stalled: the {} stage made no progress for over {} ms\n",
                        s.name(),
                        source.liveness.stall_timeout().as_millis()
                    ),
                ),
            };
            respond(
                &mut stream,
                code,
                "text/plain; charset=utf-8",
                &body,
                body_wanted,
            )
        }
        "/" => respond(
            &mut stream,
            200,
            "text/plain; charset=utf-8",
            "edgesift: /metrics (Prometheus), /healthz (liveness)\n",
            body_wanted,
        ),
        _ => respond(&mut stream, 404, "text/plain", "not found\n", body_wanted),
    }
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Control;

    /// A minimal HTTP/1.1 client: status code and body.
    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let code = resp[9..12].parse().unwrap();
        let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
        (code, body)
    }

    fn fake_thermal() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (zone, kind, temp) in [("0", "cpu-thermal", "48312"), ("1", "gpu-thermal", "bad")] {
            let z = d.path().join(format!("thermal_zone{zone}"));
            std::fs::create_dir(&z).unwrap();
            std::fs::write(z.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(z.join("temp"), format!("{temp}\n")).unwrap();
        }
        std::fs::create_dir(d.path().join("cooling_device0")).unwrap();
        d
    }

    fn source(control: &Arc<Control>, stall: Duration) -> (Arc<MetricsSource>, Arc<Liveness>) {
        let live = Arc::new(Liveness::new(control.clone(), stall));
        let thermal = fake_thermal();
        let src = MetricsSource::new(live.clone(), Path::new("/")).with_thermal_dir(thermal.path());
        // The fake zones are read at every scrape; keep them for the test's lifetime.
        std::mem::forget(thermal);
        (Arc::new(src), live)
    }

    #[test]
    fn exposition_has_every_documented_series() {
        let control = Control::new();
        let (src, live) = source(&control, Duration::from_secs(60));
        live.mark_started();
        let stats = &control.stats;
        for _ in 0..3 {
            stats.capture.record(Duration::from_millis(1));
        }
        stats.capture.dropped();
        stats.segment.record(Duration::from_millis(80));
        stats.segment.record(Duration::from_millis(300));
        stats.store.error();
        stats.note_kept(&["rare_class".into()]);
        stats.buffer_allocated();
        stats.buffer_allocated();
        stats.buffer_freed();
        src.set_model_load_time(Duration::from_millis(1500));

        let text = src.render();
        for line in [
            "edgesift_frames_total{stage=\"capture\"} 3",
            "edgesift_frames_total{stage=\"segment\"} 2",
            "edgesift_frames_dropped_total{stage=\"capture\"} 1",
            "edgesift_errors_total{stage=\"store\"} 1",
            "edgesift_kept_samples_total 1",
            "edgesift_kept_samples_by_reason_total{reason=\"rare_class\"} 1",
            "edgesift_frames_skipped_total 0",
            "edgesift_evicted_samples_total 0",
            "edgesift_stage_latency_seconds_bucket{stage=\"segment\",le=\"0.1\"} 1",
            "edgesift_stage_latency_seconds_bucket{stage=\"segment\",le=\"0.5\"} 2",
            "edgesift_stage_latency_seconds_bucket{stage=\"segment\",le=\"+Inf\"} 2",
            "edgesift_stage_latency_seconds_count{stage=\"segment\"} 2",
            "edgesift_decision_lag_seconds_count 0",
            "edgesift_store_bytes 0",
            "edgesift_model_load_seconds 1.5",
            "edgesift_soc_temperature_celsius{zone=\"0\",type=\"cpu-thermal\"} 48.312",
            "edgesift_pipeline_live 1",
            "edgesift_frame_buffers 1",
            "# TYPE edgesift_stage_latency_seconds histogram",
            "# TYPE edgesift_frames_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        for prefix in [
            "edgesift_store_free_bytes ",
            "edgesift_uptime_seconds ",
            "edgesift_build_info{version=",
            "edgesift_stage_latency_seconds_sum{stage=\"segment\"} 0.38",
            "edgesift_resident_memory_bytes ",
            "edgesift_resident_memory_peak_bytes ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(prefix)),
                "missing `{prefix}` in\n{text}"
            );
        }
        // No frame segmented yet: no first-frame time rather than 0.
        assert!(!text.contains("edgesift_first_frame_seconds"), "{text}");
        // The unreadable zone is left out rather than reported as 0.
        assert!(!text.contains("gpu-thermal"), "{text}");
    }

    #[test]
    fn http_endpoint_answers_metrics_and_health_on_loopback() {
        let control = Control::new();
        let (src, live) = source(&control, Duration::from_millis(500));
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src).unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        assert_eq!(get(addr, "/healthz"), (503, "starting\n".into()));
        live.mark_started();
        assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
        let (code, body) = get(addr, "/metrics?x=1");
        assert_eq!(code, 200);
        assert!(
            body.contains("edgesift_frames_total{stage=\"store\"} 0"),
            "{body}"
        );
        assert_eq!(get(addr, "/nope").0, 404);

        // A stage that stops beating turns /healthz to 503, naming it.
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_millis(800) {
            for s in [Stage::Capture, Stage::Select, Stage::Store] {
                control.stats.liveness_beat(s);
            }
            thread::sleep(Duration::from_millis(50));
        }
        let (code, body) = get(addr, "/healthz");
        assert_eq!(code, 503);
        assert!(body.starts_with("stalled: the segment stage"), "{body}");
        assert!(get(addr, "/metrics").1.contains("edgesift_pipeline_live 0"));

        control.stop();
        assert_eq!(get(addr, "/healthz"), (503, "stopping\n".into()));

        // A client that never sends its request does not hold the server forever.
        let idle = TcpStream::connect(addr).unwrap();
        assert_eq!(get(addr, "/healthz").0, 503);
        drop(idle);

        server.stop();
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn other_methods_are_refused() {
        let control = Control::new();
        let (src, _) = source(&control, Duration::from_secs(5));
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src).unwrap();
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"POST /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    }
}
