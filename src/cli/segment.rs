//! `edgesift segment`: one image through the model, printed, as JSON, or drawn.

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use edgesift::overlay;
use edgesift::segment::{
    Detections, Letterbox, ModelInfo, ModelOptions, PostOptions, Segmenter, TfliteOptions,
    TfliteSegmenter, Weights, YoloSegmenter, YoloV8Seg,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SegmentArgs {
    /// Model weights (safetensors exported by scripts/export_ultralytics.py, a .tflite file from
    /// scripts/export_tflite.py for --backend tflite, or scripts/export_mobilesam.py's file for
    /// --backend mobilesam).
    #[arg(long)]
    model: PathBuf,
    /// `candle` (= `yolo`: YOLOv8-seg on candle), `tflite` (YOLOv8-seg on TensorFlow Lite, CPU;
    /// needs LiteRT's libLiteRt.so at run time; the .tflite file fixes the input size, so --imgsz and
    /// --square do not apply) or `mobilesam` (masks for --boxes/--points).
    #[arg(long, value_enum, default_value_t = Backend::Yolo)]
    backend: Backend,
    /// MobileSAM box prompts `x0,y0,x1,y1` in image pixels, one mask each.
    #[arg(long, num_args = 1.., value_name = "X0,Y0,X1,Y1")]
    boxes: Vec<String>,
    /// MobileSAM point prompts `x,y` (foreground) or `x,y,0` (background).
    #[arg(long, num_args = 1.., value_name = "X,Y[,LABEL]")]
    points: Vec<String>,
    /// MobileSAM: the three alternative masks per prompt instead of the best guess.
    #[arg(long)]
    multimask: bool,
    /// MobileSAM without prompts ("everything" mode): the point grid is this many points a side
    /// (one decoder pass each; upstream uses 32).
    #[arg(long, default_value_t = 16)]
    points_per_side: usize,
    /// Image to segment (PNG or JPEG).
    #[arg(long, required_unless_present = "tensor", conflicts_with = "tensor")]
    image: Option<PathBuf>,
    /// Run only the network on tensor `images` (1x3xHxW, letterboxed, 0..1) of this safetensors file.
    #[arg(long, requires = "raw_out")]
    tensor: Option<PathBuf>,
    /// Where --tensor writes `pred` (1 x (4+nc+32) x N) and `proto` (1 x 32 x H/4 x W/4).
    #[arg(long)]
    raw_out: Option<PathBuf>,
    /// Minimum class score.
    #[arg(long, default_value_t = 0.25, value_parser = super::unit_interval)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.7, value_parser = super::unit_interval)]
    iou: f32,
    /// Network input size (multiple of 32); default: the size recorded in the model file (`imgsz`), else 640.
    #[arg(long)]
    imgsz: Option<u32>,
    /// Pad to imgsz x imgsz instead of the next multiple of 32 (ultralytics' rect inference).
    #[arg(long)]
    square: bool,
    /// Most instances to report.
    #[arg(long, default_value_t = 300)]
    max_det: usize,
    /// Print JSON (instances with COCO RLE masks) instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the image with masks, boxes and labels drawn over it.
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// `cpu` (CUDA builds also take `cuda` or `cuda:N`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    #[value(alias = "candle")]
    Yolo,
    Tflite,
    Mobilesam,
}

/// A loaded YOLOv8-seg on either backend.
enum Loaded {
    Candle(Box<YoloSegmenter>),
    Tflite(Box<TfliteSegmenter>),
}

impl Loaded {
    fn seg(&mut self) -> &mut dyn Segmenter {
        match self {
            Loaded::Candle(s) => s.as_mut(),
            Loaded::Tflite(s) => s.as_mut(),
        }
    }
    fn info(&self) -> &ModelInfo {
        match self {
            Loaded::Candle(s) => s.info(),
            Loaded::Tflite(s) => s.info(),
        }
    }
    fn imgsz(&self) -> [u32; 2] {
        match self {
            Loaded::Candle(s) => s.imgsz(),
            Loaded::Tflite(s) => s.imgsz(),
        }
    }
    fn letterbox_for(&self, width: u32, height: u32) -> Letterbox {
        match self {
            Loaded::Candle(s) => s.letterbox_for(width, height),
            Loaded::Tflite(s) => s.letterbox_for(width, height),
        }
    }
}

pub fn run(a: SegmentArgs) -> anyhow::Result<ExitCode> {
    let device = parse_device(&a.device)?;
    if a.backend == Backend::Mobilesam {
        let Some(image) = a.image.as_deref() else {
            bail!("--backend mobilesam needs --image");
        };
        return super::segment_sam::run(super::segment_sam::SamArgs {
            model: &a.model,
            image,
            boxes: &a.boxes,
            points: &a.points,
            multimask: a.multimask,
            points_per_side: a.points_per_side,
            json: a.json,
            overlay: a.overlay.as_ref(),
            device,
        });
    }
    if !a.boxes.is_empty() || !a.points.is_empty() || a.multimask {
        bail!("--boxes, --points and --multimask are MobileSAM prompts: add --backend mobilesam");
    }
    if let Some(tensor) = &a.tensor {
        if a.backend == Backend::Tflite {
            bail!("--tensor runs the candle network only; drop --backend tflite");
        }
        let out = a.raw_out.as_deref().expect("clap requires --raw-out");
        return raw(&a.model, tensor, out, &device);
    }
    let image_path = a.image.as_deref().expect("clap requires --image");
    let image = load_image(image_path)?;
    if let Some(s) = a.imgsz {
        if s == 0 || s % 32 != 0 {
            bail!("--imgsz must be a positive multiple of 32, got {s}");
        }
    }
    let opts = ModelOptions {
        device,
        dtype: DType::F32,
        imgsz: a.imgsz.map(|s| [s, s]),
        minimal_padding: !a.square,
        post: PostOptions {
            conf: a.conf,
            iou: a.iou,
            max_det: a.max_det,
            ..Default::default()
        },
    };
    let mut seg = match a.backend {
        Backend::Tflite => {
            if a.device != "cpu" {
                bail!("--backend tflite runs on the CPU (--device cpu)");
            }
            let opts = TfliteOptions {
                post: opts.post,
                ..Default::default()
            };
            Loaded::Tflite(Box::new(
                TfliteSegmenter::load(&a.model, opts)
                    .with_context(|| format!("loading model {}", a.model.display()))?,
            ))
        }
        _ => Loaded::Candle(Box::new(
            YoloSegmenter::load(&a.model, opts)
                .with_context(|| format!("loading model {}", a.model.display()))?,
        )),
    };
    let det = seg
        .seg()
        .segment(&image)
        .with_context(|| format!("segmenting {}", image_path.display()))?;
    if let Some(out) = &a.overlay {
        let mut canvas = image.clone();
        let items: Vec<overlay::Item> = det
            .instances
            .iter()
            .map(|i| overlay::Item {
                class_id: i.class_id,
                bbox: i.bbox,
                mask: Some(&i.mask),
                label: format!("{} {:.2}", det.class_name(i.class_id), i.score),
            })
            .collect();
        overlay::draw(&mut canvas, &items);
        canvas
            .save(out)
            .with_context(|| format!("writing overlay {}", out.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut stdout, &to_json(image_path, &seg, &det))?;
        writeln!(stdout)?;
    } else {
        print_table(&mut stdout, image_path, &seg, &det)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn parse_device(s: &str) -> anyhow::Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            bail!("this build of edgesift has no CUDA support (device `{s}`); use `cpu`")
        }
        other => bail!("unknown device `{other}`: expected cpu, cuda or cuda:N"),
    }
}

/// Decodes an image by its content (not its extension), with a message that names the file.
pub fn load_image(path: &Path) -> anyhow::Result<image::RgbImage> {
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?;
    if reader.format().is_none() {
        bail!(
            "{} is not an image edgesift can read (PNG or JPEG)",
            path.display()
        );
    }
    Ok(reader
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_rgb8())
}

fn raw(model: &Path, tensor: &Path, out: &Path, device: &Device) -> anyhow::Result<ExitCode> {
    let weights =
        Weights::open(model).with_context(|| format!("loading model {}", model.display()))?;
    let net = YoloV8Seg::load(&weights, device, DType::F32)
        .with_context(|| format!("loading model {}", model.display()))?;
    let tensors = candle_core::safetensors::load(tensor, &Device::Cpu)
        .with_context(|| format!("reading {}", tensor.display()))?;
    let images = tensors
        .get("images")
        .with_context(|| format!("{} has no tensor `images`", tensor.display()))?
        .to_dtype(DType::F32)?;
    let y = net.forward(&images)?;
    let outputs: HashMap<String, Tensor> = [
        (
            "pred".to_string(),
            y.pred.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
        ),
        (
            "proto".to_string(),
            y.proto.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
        ),
    ]
    .into();
    candle_core::safetensors::save(&outputs, out)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {}: pred {:?}, proto {:?}",
        out.display(),
        outputs["pred"].dims(),
        outputs["proto"].dims()
    );
    Ok(ExitCode::SUCCESS)
}

fn to_json(path: &Path, seg: &Loaded, det: &Detections) -> serde_json::Value {
    let info = seg.info();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    serde_json::json!({
        "image": path.display().to_string(),
        "width": det.image_width,
        "height": det.image_height,
        "model": { "name": info.name, "sha256": info.sha256, "imgsz": seg.imgsz() },
        "timings_ms": {
            "preprocess": ms(det.timings.preprocess),
            "inference": ms(det.timings.inference),
            "postprocess": ms(det.timings.postprocess),
        },
        "instances": det.instances.iter().map(|i| {
            let rle = i.mask.to_rle();
            serde_json::json!({
                "class_id": i.class_id,
                "class_name": det.class_name(i.class_id),
                "score": i.score,
                "box": [i.bbox.x1, i.bbox.y1, i.bbox.x2, i.bbox.y2],
                "area": i.mask.area(),
                "mask": { "size": [rle.height, rle.width], "counts": rle.to_compressed() },
            })
        }).collect::<Vec<_>>(),
    })
}

fn print_table(
    out: &mut impl Write,
    path: &Path,
    seg: &Loaded,
    det: &Detections,
) -> std::io::Result<()> {
    let t = &det.timings;
    let lb = seg.letterbox_for(det.image_width, det.image_height);
    writeln!(
        out,
        "{} {}x{}: {} instance{} (model {}, input {}x{}; pre {:.1} ms, network {:.1} ms, post {:.1} ms)",
        path.display(),
        det.image_width,
        det.image_height,
        det.instances.len(),
        if det.instances.len() == 1 { "" } else { "s" },
        seg.info().name,
        lb.input_width,
        lb.input_height,
        t.preprocess.as_secs_f64() * 1e3,
        t.inference.as_secs_f64() * 1e3,
        t.postprocess.as_secs_f64() * 1e3,
    )?;
    if det.instances.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  {:<16} {:>6}  {:>31}  {:>9}",
        "class", "score", "box x1 y1 x2 y2", "mask px"
    )?;
    for i in &det.instances {
        let b = i.bbox;
        writeln!(
            out,
            "  {:<16} {:>6.3}  [{:>6.1} {:>6.1} {:>6.1} {:>6.1}]  {:>9}",
            det.class_name(i.class_id),
            i.score,
            b.x1,
            b.y1,
            b.x2,
            b.y2,
            i.mask.area()
        )?;
    }
    Ok(())
}
