//! Frames whose picture is made only when the model takes them.

use super::convert::{ConvertError, Converter, RawBytes};
use super::synthetic::PendingScene;
use super::GroundTruth;
use image::RgbImage;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A frame not yet turned into RGB: a camera's bytes to convert, or a synthetic scene to paint.
///
/// The pipeline's capture stage hands these to the segmenter's queue instead of RGB images
/// ([`Source::next_pixels`](super::Source::next_pixels)): when the model is slower than the
/// source, the frames dropped from the queue were never converted, decoded or painted (at 30
/// frames/s and a model at 12, 60 % of them; at 1280x720 here a YUYV conversion costs 0.3 ms
/// on two threads, an MJPEG decode 7.3 ms, a synthetic frame 13-18 ms, several times that on a
/// Cortex-A72).
/// Buffers are recycled like images.
#[derive(Debug, Default)]
pub struct RawFrame {
    bytes: RawBytes,
    scene: Option<Box<PendingScene>>,
    /// The source's count of frames in a row that failed to convert, if it keeps one.
    failures: Option<Arc<AtomicU32>>,
}

impl RawFrame {
    /// Copies a camera frame's bytes for `converter`, checking what can be checked now (the
    /// length of an uncompressed frame, after which converting cannot fail; a JPEG's header and
    /// size: corrupt compressed data is found only when decoded).
    pub fn fill(&mut self, converter: &Converter, data: &[u8]) -> Result<(), ConvertError> {
        self.scene = None;
        self.failures = None;
        self.bytes.fill(converter, data)
    }

    /// The buffer for one uncompressed frame of `converter`, to be filled in place (a replayed
    /// dump reads into it); `len` is the frame's length in bytes, checked as by
    /// [`RawFrame::fill`].
    pub fn filled_with(
        &mut self,
        converter: &Converter,
        len: usize,
    ) -> Result<&mut [u8], ConvertError> {
        self.scene = None;
        self.failures = None;
        self.bytes.filled_with(converter, len)
    }

    /// Holds a synthetic scene to paint instead (the byte buffer is kept for reuse).
    pub fn set_scene(&mut self, scene: PendingScene) {
        self.scene = Some(Box::new(scene));
        self.failures = None;
    }

    /// Has [`RawFrame::convert`] report to the source: `counter` goes up by one when the
    /// frame's bytes fail to convert and back to 0 when they convert. A camera uses it to
    /// reset itself after corrupt JPEGs found only when decoded.
    pub fn report_failures_to(&mut self, counter: Arc<AtomicU32>) {
        self.failures = Some(counter);
    }

    /// Makes the picture in `image` (resized as needed, its allocation reused), on the network's
    /// pool; a painted scene also gives its ground truth.
    pub fn convert(&mut self, image: &mut RgbImage) -> Result<Option<GroundTruth>, ConvertError> {
        if let Some(scene) = self.scene.take() {
            return Ok(Some(scene.paint(image)));
        }
        let result = self.bytes.convert(image);
        if let Some(counter) = self.failures.take() {
            match result {
                Ok(()) => counter.store(0, Ordering::Relaxed),
                Err(_) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        result.map(|()| None)
    }

    /// Camera bytes held (a pending scene holds none).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
