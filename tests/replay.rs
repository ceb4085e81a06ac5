//! The replay source end to end: directories, raw dumps and MJPEG streams, pacing, errors.

use crate::util::data;
use edgesift::capture::{
    CaptureError, Clock, Delivered, FrameMeta, ManualClock, RawFrame, ReplayConfig, ReplayFormat,
    ReplaySource, Source, YuvRange,
};
use image::RgbImage;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn config(path: &Path) -> ReplayConfig {
    ReplayConfig {
        path: path.to_owned(),
        fps: 0.0,
        ..ReplayConfig::default()
    }
}

/// Every result until the stream ends (bounded, in case it never does).
fn drain(src: &mut ReplaySource) -> Vec<Result<(FrameMeta, RgbImage), CaptureError>> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let mut img = RgbImage::new(1, 1);
        match src.next_frame(&mut img) {
            Ok(Some(meta)) => out.push(Ok((meta, img))),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
    panic!("the stream did not end");
}

fn assert_colour(img: &RgbImage, want: [u8; 3], tol: u8, what: &str) {
    // Away from the white mark in the top-left corner of the fixtures.
    let (w, h) = img.dimensions();
    let px = img.get_pixel(w - 3, h - 3).0;
    for c in 0..3 {
        assert!(
            px[c].abs_diff(want[c]) <= tol,
            "{what}: pixel is {px:?}, expected {want:?} ±{tol}"
        );
    }
}

fn frame_ok(r: &Result<(FrameMeta, RgbImage), CaptureError>) -> (&FrameMeta, &RgbImage) {
    match r {
        Ok((m, i)) => (m, i),
        Err(e) => panic!("expected a frame, got {e}"),
    }
}

#[test]
fn directory_in_name_order_with_files_and_indices_and_a_corrupt_jpeg_skipped() {
    let dir = data("replay/frames");
    let mut src = ReplaySource::open(&config(&dir)).unwrap();
    assert_eq!(src.describe(), format!("replay:{}", dir.display()));
    assert_eq!(src.frame_count(), Some(4), "notes.txt is not a frame");
    let got = drain(&mut src);
    assert_eq!(got.len(), 4);

    let (m, img) = frame_ok(&got[0]);
    assert_eq!((m.file.as_deref(), m.index), (Some("frame1.png"), 0));
    assert_eq!(img.dimensions(), (32, 24));
    assert_colour(img, [200, 30, 30], 0, "frame1.png");

    let (m, img) = frame_ok(&got[1]);
    assert_eq!((m.file.as_deref(), m.index), (Some("frame2.jpg"), 1));
    assert_colour(img, [30, 200, 30], 6, "frame2.jpg");

    // The truncated JPEG is a bad frame that names its file; the stream goes on.
    match &got[2] {
        Err(e @ CaptureError::BadFrame { file, reason }) => {
            assert_eq!(file.as_deref(), Some("frame3.jpg"));
            assert!(e.to_string().contains("frame3.jpg"), "{e}");
            assert!(reason.contains("JPEG"), "{reason}");
        }
        other => panic!("expected a bad frame, got {other:?}"),
    }

    // frame10 sorts after frame3 (natural order), and keeps its position as index.
    let (m, img) = frame_ok(&got[3]);
    assert_eq!((m.file.as_deref(), m.index), (Some("frame10.png"), 3));
    assert_colour(img, [220, 220, 40], 0, "frame10.png");
    assert!(m.monotonic.is_none() && m.truth.is_none());
}

#[test]
fn paced_on_a_fixed_schedule() {
    let clock = ManualClock::new();
    let cfg = ReplayConfig {
        fps: 10.0,
        ..config(&data("replay/frames"))
    };
    let mut src = ReplaySource::with_clock(&cfg, clock.clone() as Arc<dyn Clock>).unwrap();
    let mut at = Vec::new();
    let mut img = RgbImage::new(1, 1);
    loop {
        match src.next_frame(&mut img) {
            Ok(None) => break,
            _ => at.push(clock.elapsed()),
        }
    }
    let ms = Duration::from_millis;
    // One slot per frame, the bad one included, 100 ms apart from the first.
    assert_eq!(at, [ms(0), ms(100), ms(200), ms(300)]);
    assert!(clock.sleeps().iter().all(|&s| s == ms(100)));
}

#[test]
fn looping_starts_again_with_the_same_indices() {
    let cfg = ReplayConfig {
        looping: true,
        ..config(&data("replay/frames"))
    };
    let mut src = ReplaySource::open(&cfg).unwrap();
    let mut seen = Vec::new();
    let mut img = RgbImage::new(1, 1);
    for _ in 0..9 {
        match src.next_frame(&mut img) {
            Ok(Some(m)) => seen.push((m.file.unwrap(), m.index)),
            Ok(None) => panic!("a looping replay does not end"),
            Err(CaptureError::BadFrame { file, .. }) => seen.push((file.unwrap(), 99)),
            Err(e) => panic!("{e}"),
        }
    }
    let names: Vec<&str> = seen.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "frame1.png",
            "frame2.jpg",
            "frame3.jpg",
            "frame10.png",
            "frame1.png",
            "frame2.jpg",
            "frame3.jpg",
            "frame10.png",
            "frame1.png"
        ]
    );
    assert_eq!(seen[4].1, 0);
    assert_eq!(seen[7].1, 3);
}

#[test]
fn missing_and_empty_inputs_are_clear_errors() {
    let missing = Path::new("/nonexistent/edgesift/run3");
    let e = ReplaySource::open(&config(missing)).err().unwrap();
    assert!(matches!(e, CaptureError::Unusable(_)));
    assert_eq!(
        e.to_string(),
        "replay: /nonexistent/edgesift/run3 does not exist"
    );

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("labels.json"), "{}").unwrap();
    let e = ReplaySource::open(&config(empty.path())).err().unwrap();
    assert!(e.to_string().contains("no PNG or JPEG files in"), "{e}");

    let odd = empty.path().join("capture.bin");
    std::fs::write(&odd, [0u8; 100]).unwrap();
    let e = ReplaySource::open(&config(&odd)).err().unwrap();
    assert!(e.to_string().contains("set format"), "{e}");

    // A raw dump smaller than one frame: the size is wrong, say so.
    let cfg = ReplayConfig {
        format: ReplayFormat::Yuyv,
        width: 64,
        height: 48,
        ..config(&odd)
    };
    let e = ReplaySource::open(&cfg).err().unwrap();
    assert!(e.to_string().contains("less than one yuyv frame"), "{e}");

    // Configuration errors come out as unusable, naming the key.
    let cfg = ReplayConfig {
        format: ReplayFormat::Nv12,
        ..config(&odd)
    };
    let e = ReplaySource::open(&cfg).err().unwrap();
    assert!(e.to_string().contains("width: required"), "{e}");
}

/// BT.601 limited-range samples and the RGB they stand for.
const COLOURS: [([u8; 3], [u8; 3]); 3] = [
    ([126, 128, 128], [128, 128, 128]),
    ([81, 90, 240], [255, 0, 0]),
    ([41, 240, 110], [0, 0, 255]),
];

#[test]
fn raw_yuyv_dump() {
    let (w, h) = (64usize, 48usize);
    let mut dump = Vec::new();
    for ([y, u, v], _) in COLOURS {
        for _ in 0..w * h / 2 {
            dump.extend_from_slice(&[y, u, y, v]);
        }
    }
    // Half a frame at the end: the recording was cut short.
    dump.extend(std::iter::repeat_n(16u8, w * h));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cam.yuyv");
    std::fs::write(&path, &dump).unwrap();

    let cfg = ReplayConfig {
        width: w as u32,
        height: h as u32,
        ..config(&path)
    };
    let mut src = ReplaySource::open(&cfg).unwrap();
    assert_eq!(src.frame_count(), Some(3));
    let got = drain(&mut src);
    assert_eq!(got.len(), 4);
    for (i, (_, rgb)) in COLOURS.iter().enumerate() {
        let (m, img) = frame_ok(&got[i]);
        assert_eq!((m.file.as_deref(), m.index), (Some("cam.yuyv"), i as u64));
        assert_eq!(img.dimensions(), (64, 48));
        assert_colour(img, *rgb, 2, &format!("yuyv frame {i}"));
    }
    match &got[3] {
        Err(CaptureError::BadFrame { file, reason }) => {
            assert_eq!(file.as_deref(), Some("cam.yuyv"));
            assert_eq!(reason, "frame 3 is cut short: 3072 of 6144 bytes");
        }
        other => panic!("expected a bad frame, got {other:?}"),
    }
}

/// What the pipeline does with a dump: frames handed over unconverted (the cut one still found
/// at once), converted later to exactly what `next_frame` gives; images and MJPEG never come
/// unconverted.
#[test]
fn raw_dump_frames_can_wait_unconverted() {
    let (w, h) = (64usize, 48usize);
    let mut dump = Vec::new();
    for ([y, u, v], _) in COLOURS {
        for _ in 0..w * h / 2 {
            dump.extend_from_slice(&[y, u, y, v]);
        }
    }
    dump.extend(std::iter::repeat_n(16u8, w * h));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cam.yuyv");
    std::fs::write(&path, &dump).unwrap();
    let cfg = ReplayConfig {
        width: w as u32,
        height: h as u32,
        ..config(&path)
    };
    let eager = drain(&mut ReplaySource::open(&cfg).unwrap());
    let mut src = ReplaySource::open(&cfg).unwrap();
    let (mut image, mut raw) = (RgbImage::new(1, 1), RawFrame::default());
    for (i, want) in eager.iter().take(3).enumerate() {
        let (meta, delivered) = src.next_pixels(&mut image, &mut raw).unwrap().unwrap();
        assert_eq!(delivered, Delivered::Raw);
        assert_eq!(image.dimensions(), (1, 1), "the image is left alone");
        assert_eq!(raw.len(), w * h * 2);
        assert_eq!(
            (meta.file.as_deref(), meta.index),
            (Some("cam.yuyv"), i as u64)
        );
        let mut converted = RgbImage::new(1, 1);
        raw.convert(&mut converted).unwrap();
        assert_eq!(&converted, frame_ok(want).1, "frame {i}");
    }
    match src.next_pixels(&mut image, &mut raw) {
        Err(CaptureError::BadFrame { reason, .. }) => {
            assert_eq!(reason, "frame 3 is cut short: 3072 of 6144 bytes")
        }
        other => panic!("expected a bad frame, got {other:?}"),
    }
    assert!(src.next_pixels(&mut image, &mut raw).unwrap().is_none());

    let mut images = ReplaySource::open(&config(&data("coffee.png"))).unwrap();
    let (_, delivered) = images.next_pixels(&mut image, &mut raw).unwrap().unwrap();
    assert_eq!(delivered, Delivered::Rgb);
    assert!(image.width() > 1);
}

#[test]
fn raw_nv12_dump_full_range() {
    let (w, h) = (32usize, 16usize);
    let mut dump = Vec::new();
    // Full range: Y is the grey level itself.
    for grey in [0u8, 77, 255] {
        dump.extend(std::iter::repeat_n(grey, w * h));
        for _ in 0..(w / 2) * (h / 2) {
            dump.extend_from_slice(&[128, 128]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.bin");
    std::fs::write(&path, &dump).unwrap();
    let cfg = ReplayConfig {
        format: ReplayFormat::Nv12,
        width: w as u32,
        height: h as u32,
        range: YuvRange::Full,
        ..config(&path)
    };
    let mut src = ReplaySource::open(&cfg).unwrap();
    let got = drain(&mut src);
    assert_eq!(got.len(), 3);
    for (i, grey) in [0u8, 77, 255].into_iter().enumerate() {
        let (m, img) = frame_ok(&got[i]);
        assert_eq!((m.file.as_deref(), m.index), (Some("dump.bin"), i as u64));
        assert_colour(img, [grey; 3], 1, &format!("nv12 frame {i}"));
    }
}

fn jpeg(rgb: [u8; 3]) -> Vec<u8> {
    let img = RgbImage::from_pixel(48, 32, image::Rgb(rgb));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// Drops the Huffman tables, as UVC cameras do.
fn without_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while jpeg[i + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        if jpeg[i + 1] != 0xC4 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

#[test]
fn mjpeg_stream_file() {
    let colours = [[200u8, 40, 40], [40, 200, 40], [0, 0, 0], [90, 90, 90]];
    let frames: Vec<Vec<u8>> = colours.iter().map(|&c| jpeg(c)).collect();
    let mut stream = Vec::new();
    stream.extend(&frames[0]);
    // Camera-style frame without Huffman tables.
    stream.extend(without_huffman_tables(&frames[1]));
    // A frame cut short inside its scan (lost USB packets), then the next frame: a busy
    // picture so that the scan is most of the file.
    let busy = RgbImage::from_fn(128, 96, |x, y| {
        image::Rgb([(x * 31 + y * 17) as u8, (x * y) as u8, (x ^ y) as u8])
    });
    let mut broken = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut broken, 90)
        .encode_image(&busy)
        .unwrap();
    stream.extend(&broken[..broken.len() * 2 / 3]);
    stream.extend(b"\r\n--frame\r\n\r\n");
    stream.extend(&frames[3]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drive.mjpeg");
    std::fs::write(&path, &stream).unwrap();

    let mut src = ReplaySource::open(&config(&path)).unwrap();
    assert_eq!(src.frame_count(), None);
    let got = drain(&mut src);
    assert_eq!(
        got.len(),
        4,
        "{:?}",
        got.iter()
            .map(|r| r.as_ref().map(|(m, _)| m.index))
            .collect::<Vec<_>>()
    );
    for i in [0usize, 1, 3] {
        let (m, img) = frame_ok(&got[i]);
        assert_eq!(
            (m.file.as_deref(), m.index),
            (Some("drive.mjpeg"), i as u64)
        );
        assert_eq!(img.dimensions(), (48, 32));
        assert_colour(img, colours[i], 4, &format!("mjpeg frame {i}"));
    }
    match &got[2] {
        Err(CaptureError::BadFrame { file, reason }) => {
            assert_eq!(file.as_deref(), Some("drive.mjpeg"));
            assert_eq!(
                reason,
                "frame 2: cut short: the next frame starts before this one ends"
            );
        }
        other => panic!("expected a bad frame, got {other:?}"),
    }
}

/// How the lead composes `[source]`: an internally tagged enum of the sections.
#[test]
fn section_slots_into_a_tagged_source_enum() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(tag = "kind", rename_all = "lowercase")]
    #[allow(dead_code)]
    enum SourceConfig {
        Replay(ReplayConfig),
        V4l(edgesift::capture::V4lConfig),
    }
    #[derive(serde::Deserialize, Debug)]
    struct File {
        source: SourceConfig,
    }
    let f: File = toml::from_str(
        "[source]\nkind = \"replay\"\npath = \"/data/run3\"\nfps = 15\nloop = true\n",
    )
    .unwrap();
    match f.source {
        SourceConfig::Replay(r) => {
            assert_eq!(r.path, Path::new("/data/run3"));
            assert_eq!(r.fps, 15.0);
            assert!(r.looping);
            r.validate().unwrap();
        }
        other => panic!("{other:?}"),
    }
    let f: File = toml::from_str(
        "[source]\nkind = \"v4l\"\ndevice = \"/dev/video2\"\nformats = [\"mjpeg\", \"yuyv\"]\n",
    )
    .unwrap();
    match f.source {
        SourceConfig::V4l(v) => {
            assert_eq!(v.device, Path::new("/dev/video2"));
            v.validate().unwrap();
        }
        other => panic!("{other:?}"),
    }
    // A typo is still caught inside the tagged enum.
    let e =
        toml::from_str::<File>("[source]\nkind = \"replay\"\npath = \"x\"\nfsp = 3\n").unwrap_err();
    assert!(e.to_string().contains("fsp"), "{e}");
}
