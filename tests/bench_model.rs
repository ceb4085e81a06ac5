//! `edgesift bench-model` as a user runs it on their board: the last line for scripts, and the
//! per-convolution table of `--layers`, for f32 and for the int8 kernels.

use crate::util::data;
use std::process::Command;

fn bench(dtype: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgesift"))
        .args(["bench-model", "--model"])
        .arg(data("parity/v8n_coffee_320.safetensors"))
        .args([
            "--imgsz",
            "128",
            "--iters",
            "3",
            "--warmup",
            "1",
            "--threads",
            "2",
        ])
        .args(["--dtype", dtype, "--layers"])
        .output()
        .expect("running edgesift");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{dtype}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn layers_table_lists_every_convolution_once() {
    for dtype in ["f32", "int8"] {
        let out = bench(dtype);
        let lines: Vec<&str> = out.lines().collect();
        let median: f64 = lines
            .last()
            .and_then(|l| l.strip_prefix("median_ms "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{dtype}: no median_ms last line in\n{out}"));
        assert!(median > 0.0);
        // yolov8n-seg: 75 convolutions (the int8 model keeps the head's 9 outputs in f32), 12
        // concatenations, SPPF's pools, the Proto's upsampling and the head's decode.
        assert!(
            out.contains("layers: 90 ops a frame (75 convolutions), median of 3 runs"),
            "{dtype}:\n{out}"
        );
        let all: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.contains('%') && !l.starts_with("layers"))
            .collect();
        assert_eq!(all.len(), 90, "{dtype}:\n{out}");
        for op in ["concat", "sppf pools", "upsample2x", "head decode"] {
            assert!(
                all.iter().any(|r| r.contains(op)),
                "{dtype}: no {op}\n{out}"
            );
        }
        let rows: Vec<&str> = all
            .iter()
            .copied()
            .filter(|l| l.contains(" conv "))
            .collect();
        assert_eq!(rows.len(), 75, "{dtype}:\n{out}");
        // Slowest first, each layer index once.
        let ms: Vec<f64> = all
            .iter()
            .map(|r| r.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ms.windows(2).all(|w| w[0] >= w[1]), "{dtype}: not sorted");
        let mut idx: Vec<usize> = all
            .iter()
            .map(|r| r.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        idx.sort();
        assert_eq!(idx, (0..90).collect::<Vec<_>>(), "{dtype}");
        // The first layer: 3 -> 16, 3x3, stride 2, on the 128x128 input.
        assert!(
            rows.iter().any(|r| r.contains("3 -> 16  3x3 /2 128x128")),
            "{dtype}:\n{out}"
        );
        let int8_rows = rows.iter().filter(|r| r.contains("conv int8")).count();
        if dtype == "int8" {
            assert_eq!(int8_rows, 66, "{dtype}:\n{out}");
        } else {
            assert_eq!(int8_rows, 0, "{dtype}:\n{out}");
        }
        assert!(out.contains("layers_total_ms "), "{dtype}:\n{out}");
    }
}
