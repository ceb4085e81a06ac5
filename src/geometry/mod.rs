//! Shapes shared by every stage: boxes in image pixels, binary instance masks and their COCO
//! run-length encoding.
//!
//! These are the vocabulary of the pipeline, not of one stage: the synthetic source draws ground
//! truth with them, the segmenter produces them, selection measures overlaps with them, and the
//! store writes them out. They know nothing about files, models or configuration.
//!
//! - [`BBox`]: an axis-aligned box in continuous pixel coordinates (`x2`/`y2` exclusive edges).
//! - [`PixelRect`]: an integer rectangle of whole pixels.
//! - [`Mask`]: a binary mask of one instance, stored only inside its rectangle so that twenty
//!   instances on a 1280x720 frame cost kilobytes, not twenty full frames.
//! - [`Rle`]: the COCO run-length encoding of a mask (column-major), with pycocotools' compact
//!   string form.

mod bbox;
mod mask;
mod rle;

pub use bbox::{BBox, PixelRect};
pub use mask::Mask;
pub use rle::{Rle, RleError};
