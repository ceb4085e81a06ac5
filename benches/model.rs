//! The network alone (no letterbox, no post-processing), per model, compute dtype and input size.
//!
//! `cargo bench --bench model`. Always runs the committed parity fixtures (yolov8n-seg with f32
//! weights, yolov8s-seg with f16 weights, random init: the timing does not depend on the values)
//! at 320 and 640, and yolov8n-seg quantized to int8 (`edgesift quantize --dtype int8`, into a
//! temporary file: the int8 kernels). Set `EDGESIFT_BENCH_MODEL=path.safetensors` to add another file (e.g. the
//! `.work/peers/yolov8n-seg.safetensors` that `scripts/bench_peers.sh` writes, or an
//! `edgesift quantize` output). Threads: `RAYON_NUM_THREADS` (default: all cores).
//! Names read `<model>/<dtype>/<size>`. Side-by-side figures with onnxruntime come from
//! `scripts/bench_peers.sh`, not from here.

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use edgesift::segment::{quantize, WeightDtype, Weights, YoloV8Seg};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/parity")).join(name)
}

fn input(size: usize) -> Tensor {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let v: Vec<f32> = (0..3 * size * size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_vec(v, (1, 3, size, size), &Device::Cpu).expect("input tensor")
}

fn bench_model(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let int8 = |src: &PathBuf, name: &str| {
        let dst = tmp.path().join(format!("{name}-int8.safetensors"));
        quantize(src, &dst, WeightDtype::Int8).expect("int8 quantization");
        dst
    };
    let v8n = fixture("v8n_coffee_320.safetensors");
    let mut models = vec![
        ("v8n", "f32", v8n.clone(), vec![320, 640]),
        ("v8n", "int8", int8(&v8n, "v8n"), vec![320, 640]),
        (
            "v8s-f16w",
            "f32",
            fixture("v8s_chelsea_256_f16.safetensors"),
            vec![320],
        ),
    ];
    if let Some(p) = std::env::var_os("EDGESIFT_BENCH_MODEL") {
        let p = PathBuf::from(p);
        models.push(("env", "int8", int8(&p, "env"), vec![640]));
        models.push(("env", "f32", p, vec![640]));
    }
    let mut g = c.benchmark_group("model");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, dname, path, sizes) in models {
        let weights = Weights::open(&path).expect("model file");
        // int8 files compute on the int8 kernels in f32 mode.
        let net = YoloV8Seg::load(&weights, &Device::Cpu, DType::F32).expect("model loads");
        for &size in &sizes {
            let x = input(size);
            let id = BenchmarkId::new(format!("{name}/{dname}"), size);
            g.bench_with_input(id, &x, |b, x| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let out = net.forward(x).expect("forward");
                        out.pred.device().synchronize().expect("sync");
                    }
                    t.elapsed()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_model);
criterion_main!(benches);
