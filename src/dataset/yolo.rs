//! ultralytics' segmentation format: one label file per image, `data.yaml` at the top.

use super::{
    contour, io_err, polygon_tolerance, write_atomic, DatasetError, Labeled, Split, MIN_PART_PX,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Added to pixel-centre coordinates before normalising (see [`YoloWriter::add`]).
const SUBPIXEL_NUDGE: f32 = 0.25;

pub(crate) struct YoloWriter {
    dir: PathBuf,
    text: String,
}

impl YoloWriter {
    pub fn create(dir: &Path) -> Result<Self, DatasetError> {
        for split in Split::ALL {
            let d = dir.join("labels").join(split.name());
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(YoloWriter {
            dir: dir.to_path_buf(),
            text: String::new(),
        })
    }

    /// Writes the label file of one image (empty for an image without instances: a background
    /// image, which ultralytics trains on as such).
    pub fn add(
        &mut self,
        split: Split,
        stem: &str,
        w: u32,
        h: u32,
        labels: &[Labeled],
    ) -> Result<(), DatasetError> {
        self.text.clear();
        for l in labels {
            let Some(poly) = polygon(l) else { continue };
            write!(self.text, "{}", l.class_id).expect("writing to a String");
            for p in poly {
                // Pixel centres plus a quarter pixel: ultralytics turns coordinates back into
                // pixels with an int32 cast (truncation) before cv2.fillPoly, and after six
                // decimals x/w*w can land just below x; the nudge keeps it on the pixel meant,
                // at the native size and at every downscale ultralytics trains at.
                let x = ((p[0] + SUBPIXEL_NUDGE) / w as f32).clamp(0.0, 1.0);
                let y = ((p[1] + SUBPIXEL_NUDGE) / h as f32).clamp(0.0, 1.0);
                write!(self.text, " {} {}", fmt6(x), fmt6(y)).expect("writing to a String");
            }
            self.text.push('\n');
        }
        let path = self
            .dir
            .join("labels")
            .join(split.name())
            .join(format!("{stem}.txt"));
        write_atomic(&path, self.text.as_bytes())
    }

    /// Writes `data.yaml`.
    pub fn finish(self, dir: &Path, names: &[&str]) -> Result<(), DatasetError> {
        let abs = std::fs::canonicalize(dir).map_err(io_err(dir))?;
        let mut y = String::new();
        y.push_str("# Written by edgesift. Train with: yolo segment train data=<this file>\n");
        writeln!(y, "path: {}", yaml_str(&abs.to_string_lossy())).expect("String");
        y.push_str("train: images/train\nval: images/val\nnames:\n");
        for (i, n) in names.iter().enumerate() {
            writeln!(y, "  {i}: {}", yaml_str(n)).expect("String");
        }
        write_atomic(&dir.join("data.yaml"), y.as_bytes())
    }
}

/// The polygon of one instance in pixel-centre coordinates, at least three points: a dot or a
/// one-pixel line is padded by repeating its last point (ultralytics reads a label line of six
/// values or fewer as a box, and `cv2.fillPoly` draws such a degenerate polygon as its line).
pub(crate) fn polygon(l: &Labeled) -> Option<Vec<[f32; 2]>> {
    let mut poly = contour::mask_to_polygon(l.mask, polygon_tolerance(l.mask.area()), MIN_PART_PX)?;
    while poly.len() < 3 {
        let last = *poly.last().expect("a non-empty mask has a contour point");
        poly.push(last);
    }
    Some(poly)
}

/// Six decimals without trailing zeros.
fn fmt6(v: f32) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    let s = s.strip_suffix('.').unwrap_or(s);
    s.to_string()
}

/// A YAML single-quoted scalar.
fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_and_string_formatting() {
        assert_eq!(fmt6(0.5), "0.5");
        assert_eq!(fmt6(0.0), "0");
        assert_eq!(fmt6(1.0), "1");
        assert_eq!(fmt6(0.1234567), "0.123457");
        assert_eq!(yaml_str("it's"), "'it''s'");
    }
}
