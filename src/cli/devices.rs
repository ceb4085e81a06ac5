//! `edgesift devices`: the video devices present, their stable names, and what each offers.

use edgesift::capture::v4l2::{list_devices, negotiate::fmt_fps, probe_device, DeviceInfo, Sizes};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// Devices to show (default: every /dev/video*).
    devices: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DevicesArgs) -> anyhow::Result<ExitCode> {
    let infos: Vec<DeviceInfo> = if a.devices.is_empty() {
        list_devices()
    } else {
        a.devices.iter().map(|p| probe_device(p)).collect()
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = infos.iter().map(to_json).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if infos.is_empty() {
        writeln!(out, "no /dev/video* devices found")?;
        return Ok(ExitCode::SUCCESS);
    }
    for info in &infos {
        write_text(&mut out, info)?;
    }
    if let Some(stable) = infos
        .iter()
        .filter(|i| i.capture && i.note.is_none())
        .find_map(|i| i.aliases.first())
    {
        writeln!(
            out,
            "\nIn the config, prefer a stable name to /dev/videoN, e.g.:\n  [source]\n  kind = \"v4l\"\n  device = \"{}\"",
            stable.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_text(out: &mut impl Write, info: &DeviceInfo) -> std::io::Result<()> {
    let who = if info.card.is_empty() {
        String::new()
    } else {
        format!("  {} ({}, {})", info.card, info.driver, info.bus)
    };
    writeln!(out, "{}{who}", info.path.display())?;
    for (i, alias) in info.aliases.iter().enumerate() {
        let label = if i == 0 { "also:" } else { "" };
        writeln!(out, "  {label:5} {}", alias.display())?;
    }
    if let Some(note) = &info.note {
        writeln!(out, "  {note}")?;
    }
    for f in &info.formats {
        let usable = match f.supported {
            Some(p) => format!("[{p}]"),
            None => "(not supported)".into(),
        };
        writeln!(out, "  {:5} {:24} {usable}", f.fourcc, f.description)?;
        match &f.sizes {
            Sizes::Discrete(sizes) => {
                for (w, h, fps) in sizes {
                    writeln!(out, "        {w}x{h}{}", rates(fps))?;
                }
            }
            Sizes::Stepwise { min, max, step } => writeln!(
                out,
                "        {}x{} to {}x{} in steps of {}x{}",
                min.0, min.1, max.0, max.1, step.0, step.1
            )?,
            Sizes::Unknown => writeln!(out, "        (sizes not listed by the driver)")?,
        }
    }
    Ok(())
}

fn rates(fps: &[f64]) -> String {
    if fps.is_empty() {
        return String::new();
    }
    let list: Vec<String> = fps.iter().map(|&f| fmt_fps(f)).collect();
    format!(" @ {} fps", list.join(", "))
}

fn to_json(info: &DeviceInfo) -> serde_json::Value {
    let formats: Vec<_> = info
        .formats
        .iter()
        .map(|f| {
            let sizes = match &f.sizes {
                Sizes::Discrete(list) => json!(list
                    .iter()
                    .map(|(w, h, fps)| json!({"width": w, "height": h, "fps": fps}))
                    .collect::<Vec<_>>()),
                Sizes::Stepwise { min, max, step } => json!({
                    "min": [min.0, min.1], "max": [max.0, max.1], "step": [step.0, step.1]
                }),
                Sizes::Unknown => serde_json::Value::Null,
            };
            json!({
                "fourcc": f.fourcc,
                "description": f.description,
                "config_name": f.supported.map(|p| p.name()),
                "sizes": sizes,
            })
        })
        .collect();
    json!({
        "path": info.path,
        "aliases": info.aliases,
        "card": info.card,
        "driver": info.driver,
        "bus": info.bus,
        "capture": info.capture,
        "note": info.note,
        "formats": formats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgesift::capture::v4l2::FormatInfo;
    use edgesift::capture::PixelFormat;

    #[test]
    fn text_listing_of_a_webcam() {
        let info = DeviceInfo {
            path: "/dev/video0".into(),
            aliases: vec!["/dev/v4l/by-id/usb-046d_C920-video-index0".into()],
            card: "HD Pro Webcam C920".into(),
            driver: "uvcvideo".into(),
            bus: "usb-0000:00:14.0-1".into(),
            capture: true,
            note: None,
            formats: vec![
                FormatInfo {
                    fourcc: "YUYV".into(),
                    description: "YUYV 4:2:2".into(),
                    supported: Some(PixelFormat::Yuyv),
                    sizes: Sizes::Discrete(vec![
                        (640, 480, vec![30.0, 15.0]),
                        (1280, 720, vec![7.5]),
                    ]),
                },
                FormatInfo {
                    fourcc: "H264".into(),
                    description: "H.264".into(),
                    supported: None,
                    sizes: Sizes::Unknown,
                },
            ],
        };
        let mut out = Vec::new();
        write_text(&mut out, &info).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "/dev/video0  HD Pro Webcam C920 (uvcvideo, usb-0000:00:14.0-1)\n\
             \x20 also: /dev/v4l/by-id/usb-046d_C920-video-index0\n\
             \x20 YUYV  YUYV 4:2:2               [yuyv]\n\
             \x20       640x480 @ 30, 15 fps\n\
             \x20       1280x720 @ 7.5 fps\n\
             \x20 H264  H.264                    (not supported)\n\
             \x20       (sizes not listed by the driver)\n"
        );
        let j = to_json(&info);
        assert_eq!(j["formats"][0]["config_name"], "yuyv");
        assert_eq!(j["formats"][0]["sizes"][1]["fps"][0], 7.5);
        assert!(j["formats"][1]["config_name"].is_null());
    }
}
