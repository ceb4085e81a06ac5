//! COCO instances files: a streaming writer and a reader.

use super::{contour, io_err, tmp_name, DatasetError, Labeled, Split};
use crate::geometry::Rle;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Serialize)]
struct ImageOut<'a> {
    id: u64,
    file_name: &'a str,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct RleOut {
    size: [u32; 2],
    counts: String,
}

#[derive(Serialize)]
struct AnnotationOut {
    id: u64,
    image_id: u64,
    category_id: u64,
    segmentation: RleOut,
    area: u64,
    bbox: [f64; 4],
    iscrowd: u8,
}

struct Part {
    path: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

impl Part {
    fn create(path: PathBuf) -> Result<Self, DatasetError> {
        let f = File::create(&path).map_err(io_err(&path))?;
        Ok(Part {
            path,
            out: BufWriter::new(f),
            count: 0,
        })
    }

    fn push(&mut self, item: &impl Serialize) -> Result<(), DatasetError> {
        if self.count > 0 {
            self.out.write_all(b",\n").map_err(io_err(&self.path))?;
        }
        serde_json::to_writer(&mut self.out, item).map_err(|e| DatasetError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        self.count += 1;
        Ok(())
    }
}

struct SplitParts {
    images: Part,
    annotations: Part,
}

pub(crate) struct CocoWriter {
    dir: PathBuf,
    parts: Vec<SplitParts>,
}

impl CocoWriter {
    pub fn create(dir: &Path) -> Result<Self, DatasetError> {
        let ann = dir.join("annotations");
        std::fs::create_dir_all(&ann).map_err(io_err(&ann))?;
        let mut parts = Vec::new();
        for split in Split::ALL {
            parts.push(SplitParts {
                images: Part::create(ann.join(format!(".{}.images.part", split.name())))?,
                annotations: Part::create(ann.join(format!(".{}.annotations.part", split.name())))?,
            });
        }
        Ok(CocoWriter { dir: ann, parts })
    }

    pub fn add(
        &mut self,
        split: Split,
        file_name: &str,
        w: u32,
        h: u32,
        labels: &[Labeled],
    ) -> Result<(), DatasetError> {
        let p = &mut self.parts[split as usize];
        let image_id = p.images.count + 1;
        p.images.push(&ImageOut {
            id: image_id,
            file_name,
            width: w,
            height: h,
        })?;
        for l in labels {
            let rle = l.mask.to_rle();
            let area = rle.area();
            if area == 0 {
                continue;
            }
            let ann = AnnotationOut {
                id: p.annotations.count + 1,
                image_id,
                category_id: l.class_id as u64 + 1,
                bbox: rle.bbox(),
                area,
                segmentation: RleOut {
                    size: [h, w],
                    counts: rle.to_compressed(),
                },
                iscrowd: 0,
            };
            p.annotations.push(&ann)?;
        }
        Ok(())
    }

    /// Assembles `instances_<split>.json` from the parts.
    pub fn finish(self, names: &[&str]) -> Result<(), DatasetError> {
        #[derive(Serialize)]
        struct Category<'a> {
            id: u64,
            name: &'a str,
            supercategory: &'a str,
        }
        let categories: Vec<Category> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Category {
                id: i as u64 + 1,
                name: n,
                supercategory: "object",
            })
            .collect();
        let categories = serde_json::to_string(&categories).expect("serialising plain structs");
        for (split, parts) in Split::ALL.into_iter().zip(self.parts) {
            let path = self.dir.join(format!("instances_{}.json", split.name()));
            let tmp = tmp_name(&path);
            let mut out = BufWriter::new(File::create(&tmp).map_err(io_err(&tmp))?);
            let copy_part = |out: &mut BufWriter<File>, part: Part| -> Result<(), DatasetError> {
                let mut w = part.out;
                w.flush().map_err(io_err(&part.path))?;
                drop(w);
                let mut f = File::open(&part.path).map_err(io_err(&part.path))?;
                std::io::copy(&mut f, out).map_err(io_err(&tmp))?;
                std::fs::remove_file(&part.path).map_err(io_err(&part.path))?;
                Ok(())
            };
            writeln!(
                out,
                "{{\"info\":{{\"description\":\"edgesift dataset export\",\"version\":\"1.0\"}},\"licenses\":[],\"categories\":{categories},\"images\":["
            )
            .map_err(io_err(&tmp))?;
            copy_part(&mut out, parts.images)?;
            out.write_all(b"\n],\"annotations\":[\n")
                .map_err(io_err(&tmp))?;
            copy_part(&mut out, parts.annotations)?;
            out.write_all(b"\n]}\n").map_err(io_err(&tmp))?;
            out.flush().map_err(io_err(&tmp))?;
            drop(out);
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        }
        Ok(())
    }
}

/// Larger images are refused (their masks would not fit in memory).
const MAX_IMAGE_PIXELS: u64 = 1 << 28;

/// A COCO instances file in memory.
#[derive(Debug, Clone, Default)]
pub struct CocoDataset {
    pub images: Vec<CocoImage>,
    pub annotations: Vec<CocoAnnotation>,
    pub categories: Vec<CocoCategory>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CocoImage {
    pub id: u64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CocoAnnotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, width, height]`.
    pub bbox: [f64; 4],
    pub area: f64,
    pub iscrowd: bool,
    /// The mask, on its image's size; `None` for a box-only annotation.
    pub segmentation: Option<Rle>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
    pub supercategory: String,
}

impl CocoDataset {
    /// The annotations of one image.
    pub fn annotations_of(&self, image_id: u64) -> impl Iterator<Item = &CocoAnnotation> {
        self.annotations
            .iter()
            .filter(move |a| a.image_id == image_id)
    }

    /// The category with this id.
    pub fn category(&self, id: u64) -> Option<&CocoCategory> {
        self.categories.iter().find(|c| c.id == id)
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    images: Vec<RawImage>,
    #[serde(default)]
    annotations: Vec<RawAnnotation>,
    #[serde(default)]
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
struct RawImage {
    id: u64,
    #[serde(default)]
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct RawCategory {
    id: u64,
    name: String,
    #[serde(default)]
    supercategory: String,
}

#[derive(Deserialize)]
struct RawAnnotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    #[serde(default)]
    segmentation: Option<RawSegmentation>,
    #[serde(default)]
    area: Option<f64>,
    #[serde(default)]
    bbox: Option<[f64; 4]>,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSegmentation {
    Rle { size: [u32; 2], counts: RawCounts },
    Polygons(Vec<Vec<f64>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCounts {
    Compressed(String),
    Runs(Vec<u32>),
}

/// Reads a COCO instances file. Masks may be compressed RLE, uncompressed RLE or polygons;
/// polygons are rasterised with [`contour::fill_coco_polygon`], which matches pycocotools to
/// within a pixel along the outline.
pub fn read_coco(path: &Path) -> Result<CocoDataset, DatasetError> {
    let bad = |reason: String| DatasetError::Coco {
        path: path.to_path_buf(),
        reason,
    };
    let f = File::open(path).map_err(io_err(path))?;
    let raw: RawFile = serde_json::from_reader(std::io::BufReader::new(f))
        .map_err(|e| bad(format!("not a COCO instances file: {e}")))?;
    let mut sizes = HashMap::new();
    for im in &raw.images {
        if im.width as u64 * im.height as u64 > MAX_IMAGE_PIXELS {
            return Err(bad(format!(
                "image {} is {}x{}, more than {MAX_IMAGE_PIXELS} pixels",
                im.id, im.width, im.height
            )));
        }
        if sizes.insert(im.id, (im.width, im.height)).is_some() {
            return Err(bad(format!("image id {} appears twice", im.id)));
        }
    }
    let mut annotations = Vec::with_capacity(raw.annotations.len());
    for a in raw.annotations {
        let &(w, h) = sizes.get(&a.image_id).ok_or_else(|| {
            bad(format!(
                "annotation {} refers to image {}, which is not listed",
                a.id, a.image_id
            ))
        })?;
        let segmentation = match a.segmentation {
            None => None,
            Some(RawSegmentation::Rle { size, counts }) => {
                if size != [h, w] {
                    return Err(bad(format!(
                        "annotation {}: mask size {}x{} (h x w) differs from its image's {h}x{w}",
                        a.id, size[0], size[1]
                    )));
                }
                let rle = match counts {
                    RawCounts::Compressed(s) => Rle::from_compressed(h, w, &s),
                    RawCounts::Runs(c) => Rle::new(h, w, c),
                }
                .map_err(|e| bad(format!("annotation {}: {e}", a.id)))?;
                Some(rle)
            }
            Some(RawSegmentation::Polygons(polys)) => {
                let mut full = vec![0u8; w as usize * h as usize];
                for p in polys {
                    if p.len() < 6 || p.len() % 2 != 0 {
                        return Err(bad(format!(
                            "annotation {}: a polygon needs an even number (>= 6) of coordinates",
                            a.id
                        )));
                    }
                    let pts: Vec<[f32; 2]> = p
                        .chunks_exact(2)
                        .map(|c| [c[0] as f32, c[1] as f32])
                        .collect();
                    contour::fill_coco_polygon(&pts, w, h).paint(&mut full, 1);
                }
                Some(crate::geometry::Mask::from_full(w, h, &full).to_rle())
            }
        };
        let area = a
            .area
            .or_else(|| segmentation.as_ref().map(|r| r.area() as f64))
            .unwrap_or(0.0);
        let bbox = a
            .bbox
            .or_else(|| segmentation.as_ref().map(|r| r.bbox()))
            .unwrap_or([0.0; 4]);
        annotations.push(CocoAnnotation {
            id: a.id,
            image_id: a.image_id,
            category_id: a.category_id,
            bbox,
            area,
            iscrowd: a.iscrowd != 0,
            segmentation,
        });
    }
    Ok(CocoDataset {
        images: raw
            .images
            .into_iter()
            .map(|i| CocoImage {
                id: i.id,
                file_name: i.file_name,
                width: i.width,
                height: i.height,
            })
            .collect(),
        annotations,
        categories: raw
            .categories
            .into_iter()
            .map(|c| CocoCategory {
                id: c.id,
                name: c.name,
                supercategory: c.supercategory,
            })
            .collect(),
    })
}
