//! Pixel conversion at 1280x720, the default camera mode: what one frame costs the capture
//! thread in each format the camera may send.
//!
//! `cargo bench --bench convert`. The picture is a real photo (tests/data/coffee.png) scaled
//! to 720p, so the JPEG has realistic entropy; the YUV frames are made from it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgesift::capture::convert::{Converter, PixelFormat, YuvSpec};
use image::RgbImage;
use std::hint::black_box;
use std::time::Duration;

const W: u32 = 1280;
const H: u32 = 720;

fn photo() -> RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/coffee.png");
    let img = image::open(path)
        .expect("tests/data/coffee.png")
        .into_rgb8();
    image::imageops::resize(&img, W, H, image::imageops::FilterType::Triangle)
}

/// BT.601 limited range, the camera's encoding.
fn yuv(p: &image::Rgb<u8>) -> (u8, u8, u8) {
    let [r, g, b] = p.0.map(f32::from);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    (y as u8, u as u8, v as u8)
}

fn yuyv(img: &RgbImage, stride: usize) -> Vec<u8> {
    let mut out = vec![0u8; stride * H as usize];
    for y in 0..H {
        for x in (0..W).step_by(2) {
            let (y0, u, v) = yuv(img.get_pixel(x, y));
            let (y1, _, _) = yuv(img.get_pixel(x + 1, y));
            let o = y as usize * stride + x as usize * 2;
            out[o..o + 4].copy_from_slice(&[y0, u, y1, v]);
        }
    }
    out
}

fn nv12(img: &RgbImage) -> Vec<u8> {
    let (w, h) = (W as usize, H as usize);
    let mut out = vec![0u8; w * h * 3 / 2];
    for y in 0..H {
        for x in 0..W {
            let (l, u, v) = yuv(img.get_pixel(x, y));
            out[y as usize * w + x as usize] = l;
            if x % 2 == 0 && y % 2 == 0 {
                let o = w * h + (y as usize / 2) * w + x as usize;
                out[o] = u;
                out[o + 1] = v;
            }
        }
    }
    out
}

fn mjpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(img)
        .expect("encode");
    out
}

fn bench(c: &mut Criterion) {
    let img = photo();
    let cases = [
        ("yuyv", PixelFormat::Yuyv, yuyv(&img, W as usize * 2), None),
        // Rows padded to a 4 KiB multiple, as some CSI bridges deliver (row-by-row path).
        (
            "yuyv_padded",
            PixelFormat::Yuyv,
            yuyv(&img, 4096),
            Some(4096),
        ),
        ("nv12", PixelFormat::Nv12, nv12(&img), None),
        ("mjpeg", PixelFormat::Mjpeg, mjpeg(&img), None),
    ];
    let mut g = c.benchmark_group("convert");
    g.throughput(Throughput::Elements(1));
    for (name, format, data, stride) in cases {
        let mut conv = Converter::new(format, W, H, stride, YuvSpec::default()).expect("valid");
        let mut out = RgbImage::new(W, H);
        conv.convert(&data, &mut out).expect("frame converts");
        g.bench_function(format!("{name}_{W}x{H}"), |b| {
            b.iter(|| {
                conv.convert(black_box(&data), &mut out)
                    .expect("frame converts")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
