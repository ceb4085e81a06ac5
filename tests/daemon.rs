//! `edgesift run` as a user runs it: the real binary on the synthetic and replay sources, what
//! it stores, bad configs and inputs, and SIGKILL in the middle of writing followed by a restart.

use crate::util::data;
use edgesift::store::{CheckOptions, Query, SampleRecord, StoreReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesift"));
    // The tests must not pick up a config or data dir from the environment they run in.
    c.env_remove("EDGESIFT_CONFIG")
        .env_remove("EDGESIFT_DATA_DIR")
        .env("RUST_LOG", "info");
    c
}

/// The smallest real model in the fixtures (yolov8n-seg, 80 COCO classes), run at 128 px so
/// that a test run takes seconds.
fn model() -> PathBuf {
    data("parity/v8n_coffee_320.safetensors")
}

/// A config for a test run: `source` is the `[source]` part, the rest is common.
fn write_config(dir: &Path, source: &str, extra: &str) -> PathBuf {
    let text = format!(
        "{source}\n\
         [model]\npath = {model:?}\nimgsz = 128\nconf = 0.05\n\
         [store]\ndir = {store:?}\nmin_free_bytes = 0\nfsync = false\n\
         {extra}\n",
        model = model().display().to_string(),
        store = dir.join("data").display().to_string(),
    );
    let path = dir.join("edgesift.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const SYNTHETIC: &str = "[source]\nkind = \"synthetic\"\n\
    [source.synthetic]\nwidth = 320\nheight = 180\nrealtime = false\nseed = 3\n";

fn run(config: &Path, args: &[&str]) -> Output {
    bin()
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "panic in stderr:\n{err}");
}

fn samples(dir: &Path) -> Vec<SampleRecord> {
    let r = StoreReader::open(dir).unwrap();
    r.query(&Query::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every stored sample is whole and agrees with its index rows.
fn assert_store_consistent(dir: &Path) -> Vec<SampleRecord> {
    let check = edgesift::store::check_dir(dir, &CheckOptions::default()).unwrap();
    assert!(check.is_clean(), "check found: {:#?}", check.issues);
    let all = samples(dir);
    for s in &all {
        let img = s.load_image().unwrap();
        assert_eq!(img.dimensions(), (s.width, s.height));
        let ids = s.load_instance_ids().unwrap();
        assert_eq!(ids.len() as u64, s.width as u64 * s.height as u64);
        let max_id = ids.iter().copied().max().unwrap_or(0) as usize;
        assert!(max_id <= s.instances.len(), "mask id beyond the instances");
        for inst in &s.instances {
            assert_eq!((inst.rle.height, inst.rle.width), (s.height, s.width));
            assert_eq!(inst.rle.area(), inst.area);
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&s.meta.path).unwrap()).unwrap();
        assert_eq!(
            meta["instances"].as_array().map(Vec::len),
            Some(s.instances.len()),
            "sidecar and index disagree on sample {}",
            s.id
        );
        assert_eq!(s.model_name, "v8n_coffee_320");
    }
    all
}

#[test]
fn synthetic_run_stores_consistent_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), SYNTHETIC, "");
    let out = run(&cfg, &["--max-frames", "90"]);
    assert_no_panic(&out);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("captured 90"), "{summary}");
    let stored = assert_store_consistent(&tmp.path().join("data"));
    assert!(
        !stored.is_empty(),
        "nothing kept from 90 frames:\n{summary}"
    );
    assert!(
        summary.contains(&format!("kept     {} ", stored.len())),
        "summary and store disagree ({} stored):\n{summary}",
        stored.len()
    );
    for s in &stored {
        assert!(s.source.starts_with("synthetic"), "{}", s.source);
        assert!(!s.reasons.is_empty(), "a kept sample without a reason");
        assert!(s.selection.is_object(), "selection record missing");
    }
    // A second run appends to the same store.
    let out = run(&cfg, &["--max-frames", "30"]);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(assert_store_consistent(&tmp.path().join("data")).len() > stored.len());
}

#[test]
fn data_dir_flag_and_environment_override_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), SYNTHETIC, "");
    let flag_dir = tmp.path().join("flag");
    let out = run(
        &cfg,
        &[
            "--max-frames",
            "5",
            "--data-dir",
            flag_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(flag_dir.join("index.db").is_file());
    let env_dir = tmp.path().join("env");
    let out = bin()
        .args(["run", "--max-frames", "5"])
        .env("EDGESIFT_CONFIG", &cfg)
        .env("EDGESIFT_DATA_DIR", &env_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(env_dir.join("index.db").is_file());
    assert!(!tmp.path().join("data").exists());
}

#[test]
fn replay_run_records_file_names_and_skips_a_corrupt_jpeg() {
    let tmp = tempfile::tempdir().unwrap();
    // The fixture directory: two PNGs, a good JPEG, a truncated JPEG (frame3.jpg) and a text
    // file that is not a frame.
    let frames = data("replay/frames");
    let source = format!(
        "[source]\nkind = \"replay\"\n[source.replay]\npath = {:?}\nfps = 0\n",
        frames.display().to_string()
    );
    // Keep every frame so that each one's origin can be checked.
    let cfg = write_config(tmp.path(), &source, "");
    let out = run(&cfg, &[]);
    assert_no_panic(&out);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("frame3.jpg") && err.contains("bad frame"),
        "the corrupt file is not named:\n{err}"
    );
    let summary = text(&out.stdout);
    assert!(summary.contains("captured 3"), "{summary}");
    assert!(summary.contains("errors   capture 1"), "{summary}");
    let stored = assert_store_consistent(&tmp.path().join("data"));
    assert!(!stored.is_empty());
    for s in &stored {
        let file = s.source_file.as_deref().unwrap_or_default();
        assert!(
            ["frame1.png", "frame2.jpg", "frame10.png"]
                .iter()
                .any(|f| file.ends_with(f)),
            "sample {} has origin {file:?}",
            s.id
        );
        assert!(s.source.starts_with("replay:"), "{}", s.source);
    }
}

#[test]
fn malformed_configs_name_the_key_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("[store]\nmax_byte = 5\n", "store.max_byte"),
        ("[model]\nconf = \"high\"\n", "model.conf"),
        ("[model]\niou = 1.5\n", "model.iou"),
        ("[model]\nbackend = \"sam\"\n", "model.backend"),
        (
            "[model.everything]\npoints_per_side = 0\n",
            "model.everything.points_per_side",
        ),
        ("[source]\nkind = \"usb\"\n", "source.kind"),
        ("[source]\nkind = \"replay\"\n", "source.replay.path"),
        (
            "[source]\nkind = \"v4l\"\n[source.v4l]\nfps = -3\n",
            "source.v4l.fps",
        ),
    ];
    for (i, (body, key)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, body).unwrap();
        for sub in ["run", "check-config"] {
            let out = if sub == "run" {
                run(&path, &[])
            } else {
                bin().arg(sub).arg(&path).output().unwrap()
            };
            assert_no_panic(&out);
            assert_eq!(out.status.code(), Some(2), "{sub} {body}");
            let err = text(&out.stderr);
            assert!(
                err.contains(key),
                "{sub}: `{body}` should name {key}:\n{err}"
            );
        }
    }
    // A missing file is named too.
    let out = run(&tmp.path().join("nope.toml"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.toml"));
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/edgesift.toml");
    let parsed = edgesift::config::Config::load(&cfg).unwrap();
    // The shipped file documents the defaults: it must say what an empty file means.
    let mut defaults = edgesift::config::Config::default();
    defaults.store.dir = parsed.store.dir.clone();
    assert_eq!(
        parsed, defaults,
        "config/edgesift.toml drifted from the defaults"
    );
}

#[test]
fn a_missing_model_or_device_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "[source]\nkind = \"v4l\"\n[source.v4l]\ndevice = \"/dev/video-does-not-exist\"\nstartup_wait_s = 0\n",
        "",
    );
    let out = run(&cfg, &[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("/dev/video-does-not-exist"), "{err}");

    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        &model().display().to_string(),
        "/nonexistent/model.safetensors",
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let out = run(&cfg, &[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("model file not found"));

    // A file that is not safetensors is refused, not a crash.
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "/nonexistent/model.safetensors",
        &junk.display().to_string(),
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let out = run(&cfg, &[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("junk.safetensors"));
}

#[test]
fn sigkill_while_writing_then_restart_leaves_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    // fsync on: the crash-safety promise is about real durable writes.
    let cfg = write_config(tmp.path(), SYNTHETIC, "");
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("fsync = false", "fsync = true");
    std::fs::write(&cfg, text_cfg).unwrap();
    let data_dir = tmp.path().join("data");
    let mut killed_with_samples = 0;
    for round in 0..4u64 {
        let mut child = bin()
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it get going (model load, then frames being stored), then kill it at a moment
        // that differs from round to round.
        let until = Instant::now() + Duration::from_millis(1500 + 400 * round);
        while Instant::now() < until {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("daemon exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if data_dir.join("index.db").exists() && !samples(&data_dir).is_empty() {
            killed_with_samples += 1;
        }
        // The restart recovers whatever the kill interrupted, then runs normally.
        let out = run(&cfg, &["--max-frames", "10"]);
        assert!(
            out.status.success(),
            "restart after SIGKILL failed:\n{}",
            text(&out.stderr)
        );
        assert_store_consistent(&data_dir);
    }
    assert!(
        killed_with_samples > 0,
        "the kills never happened while samples were being stored"
    );
}

#[test]
fn quota_holds_over_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    // 1 MiB of PNGs fills within the run, so eviction must keep the store under it.
    let cfg = write_config(tmp.path(), SYNTHETIC, "");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "min_free_bytes = 0",
        "min_free_bytes = 0\nmax_bytes = 1048576\nimage_format = \"png\"",
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let out = run(&cfg, &["--max-frames", "600"]);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let dir = tmp.path().join("data");
    let stored = assert_store_consistent(&dir);
    let r = StoreReader::open(&dir).unwrap();
    let stats = r.stats().unwrap();
    assert!(
        stats.quota_bytes <= 1 << 20,
        "store holds {} bytes over a 1 MiB quota",
        stats.quota_bytes
    );
    assert!(!stored.is_empty());
}

#[test]
fn export_writes_what_the_daemon_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), SYNTHETIC, "");
    let out = run(&cfg, &["--max-frames", "120"]);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let dir = tmp.path().join("data");
    let stored = assert_store_consistent(&dir);
    let with_instances: Vec<_> = stored.iter().filter(|s| !s.instances.is_empty()).collect();
    let ds = tmp.path().join("dataset");
    let out = bin()
        .args(["export", "--format", "coco,yolo-seg", "--dir"])
        .arg(&dir)
        .arg("--out")
        .arg(&ds)
        .output()
        .unwrap();
    assert_no_panic(&out);
    if with_instances.is_empty() {
        // Nothing to label is an error that says so, not an empty dataset.
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("no instances"));
        return;
    }
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(ds.join("data.yaml").is_file());
    // The COCO files read back with the instances the store holds.
    let mut images = 0;
    let mut annotations = 0;
    for split in ["train", "val"] {
        let json = ds
            .join("annotations")
            .join(format!("instances_{split}.json"));
        if let Ok(bytes) = std::fs::read(&json) {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            images += v["images"].as_array().unwrap().len();
            annotations += v["annotations"].as_array().unwrap().len();
        }
    }
    assert_eq!(images, stored.len());
    let expected: usize = stored
        .iter()
        .map(|s| s.instances.iter().filter(|i| i.area > 0).count())
        .sum();
    assert_eq!(annotations, expected);
}

/// `[model] backend = "mobilesam-everything"`: the daemon runs without a detector, on MobileSAM's
/// automatic masks (the seeded MobileSAM of tests/mobilesam.rs, a 2x2 point grid, filters off so
/// that random weights give masks); every stored instance is a class-agnostic `object`.
#[test]
fn everything_backend_stores_class_agnostic_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = crate::mobilesam::weights_file();
    let store = tmp.path().join("data");
    let body = format!(
        "{SYNTHETIC}\n\
         [model]\nbackend = \"mobilesam-everything\"\npath = {weights:?}\nmax_det = 5\n\
         [model.everything]\npoints_per_side = 2\npred_iou_thresh = 0.0\n\
         stability_score_thresh = 0.0\n\
         [store]\ndir = {store:?}\nmin_free_bytes = 0\nfsync = false\n",
        weights = weights.display().to_string(),
        store = store.display().to_string(),
    );
    let cfg = tmp.path().join("edgesift.toml");
    std::fs::write(&cfg, body).unwrap();
    let out = run(&cfg, &["--max-frames", "3"]);
    assert_no_panic(&out);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let check = edgesift::store::check_dir(&store, &CheckOptions::default()).unwrap();
    assert!(check.is_clean(), "check found: {:#?}", check.issues);
    let stored = samples(&store);
    assert!(!stored.is_empty(), "nothing kept:\n{}", text(&out.stdout));
    let instances: Vec<_> = stored.iter().flat_map(|s| &s.instances).collect();
    assert!(!instances.is_empty(), "no masks stored");
    for s in &stored {
        assert_eq!(s.model_name, "mobilesam_seeded");
        assert!(s.instances.len() <= 5, "max_det");
        for i in &s.instances {
            assert_eq!((i.class_id, i.class_name.as_str()), (0, "object"));
            assert_eq!((i.rle.width, i.rle.height), (s.width, s.height));
            assert!(i.area > 0);
        }
    }
    // A YOLO file under this backend is refused, naming what is wrong.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "{SYNTHETIC}\n[model]\nbackend = \"mobilesam-everything\"\npath = {:?}\n\
             [store]\ndir = {store:?}\nmin_free_bytes = 0\nfsync = false\n",
            model().display().to_string(),
            store = store.display().to_string(),
        ),
    )
    .unwrap();
    let out = run(&bad, &["--max-frames", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a MobileSAM file"),
        "{}",
        text(&out.stderr)
    );
}

/// `[refine]` end to end: kept frames' boxes prompt MobileSAM (the seeded weights of
/// tests/mobilesam.rs) and the store keeps the refined masks beside the detector's: the refined
/// instance-id PNG, `mask_refined` per instance (at most `max_instances` per frame), and a
/// summary in the selection record; the store checks clean.
#[test]
fn refine_run_stores_refined_masks_beside_the_detectors() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = crate::mobilesam::weights_file();
    let refine = format!(
        "[refine]\nenabled = true\nmodel = {:?}\nmax_instances = 2\nmin_box_px = 4\n",
        weights.display().to_string()
    );
    let cfg = write_config(tmp.path(), SYNTHETIC, &refine);
    let out = run(&cfg, &["--max-frames", "40"]);
    assert_no_panic(&out);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    let stored = assert_store_consistent(&tmp.path().join("data"));
    let mut refined_total = 0;
    for s in &stored {
        let summary = &s.selection["refine"];
        let refined: Vec<_> = s.instances.iter().filter(|i| i.refined.is_some()).collect();
        assert!(refined.len() <= 2, "max_instances");
        assert_eq!(summary["instances"], refined.len(), "sample {}", s.id);
        assert_eq!(s.refined.is_some(), !refined.is_empty(), "sample {}", s.id);
        if let Some(ids) = s.load_refined_ids().unwrap() {
            assert_eq!(ids.len() as u64, s.width as u64 * s.height as u64);
            for &v in ids.iter().filter(|&&v| v > 0) {
                assert!(s.instances[v as usize - 1].refined.is_some());
            }
        }
        for r in refined.iter().filter_map(|i| i.refined.as_ref()) {
            assert_eq!((r.rle.width, r.rle.height), (s.width, s.height));
            assert!(r.predicted_iou.is_finite());
        }
        refined_total += refined.len();
    }
    assert!(
        refined_total > 0,
        "no instance refined in {} kept frames:\n{}",
        stored.len(),
        text(&out.stdout)
    );
    // `export --masks refined` labels with the refined masks where there are some.
    assert!(
        stored
            .iter()
            .flat_map(|s| &s.instances)
            .any(|i| i.refined.as_ref().is_some_and(|r| r.rle.area() != i.area)),
        "refined masks identical to the detector's: the export check below would prove nothing"
    );
    let total_area = |ds: &Path| -> u64 {
        ["train", "val"]
            .iter()
            .filter_map(|split| {
                std::fs::read(ds.join(format!("annotations/instances_{split}.json"))).ok()
            })
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
            .flat_map(|v| v["annotations"].as_array().unwrap().clone())
            .map(|a| a["area"].as_u64().unwrap())
            .sum()
    };
    for (masks, want) in [
        (
            "detector",
            stored
                .iter()
                .flat_map(|s| &s.instances)
                .map(|i| i.area)
                .sum::<u64>(),
        ),
        (
            "refined",
            stored
                .iter()
                .flat_map(|s| &s.instances)
                .map(|i| i.refined.as_ref().map_or(i.area, |r| r.rle.area()))
                .sum::<u64>(),
        ),
    ] {
        let ds = tmp.path().join(format!("dataset-{masks}"));
        let out = bin()
            .args(["export", "--masks", masks, "--dir"])
            .arg(tmp.path().join("data"))
            .arg("--out")
            .arg(&ds)
            .output()
            .unwrap();
        assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
        assert_eq!(total_area(&ds), want, "--masks {masks}");
    }
}
