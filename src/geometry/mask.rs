use super::{PixelRect, Rle};

/// The binary mask of one instance on an image of `image_width x image_height` pixels.
///
/// Only the pixels inside [`Mask::rect`] are stored (one byte each, 0 or 1, row-major); every
/// pixel outside it is background. Instance masks are cropped to their box anyway, so this keeps
/// a frame's worth of masks small and makes overlap tests cheap.
#[derive(Clone, PartialEq, Eq)]
pub struct Mask {
    image_width: u32,
    image_height: u32,
    rect: PixelRect,
    data: Vec<u8>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mask")
            .field("image", &(self.image_width, self.image_height))
            .field("rect", &self.rect)
            .field("area", &self.area())
            .finish()
    }
}

impl Mask {
    /// A mask whose pixels inside `rect` are `data` (row-major, non-zero means set).
    ///
    /// # Panics
    /// If `rect` leaves the image or `data` does not have one byte per pixel of `rect`: both are
    /// programming errors of the caller, never properties of input data.
    pub fn new(image_width: u32, image_height: u32, rect: PixelRect, mut data: Vec<u8>) -> Self {
        assert!(
            rect.right() <= image_width && rect.bottom() <= image_height,
            "mask rect {rect:?} outside a {image_width}x{image_height} image"
        );
        assert_eq!(data.len() as u64, rect.area(), "mask data size");
        for v in &mut data {
            *v = (*v != 0) as u8;
        }
        Self {
            image_width,
            image_height,
            rect,
            data,
        }
    }

    /// An empty mask (no pixel set).
    pub fn empty(image_width: u32, image_height: u32) -> Self {
        Self {
            image_width,
            image_height,
            rect: PixelRect::default(),
            data: Vec::new(),
        }
    }

    /// A mask from `f(x, y)` evaluated on every pixel of `rect` (clipped to the image).
    pub fn from_fn(
        image_width: u32,
        image_height: u32,
        rect: PixelRect,
        mut f: impl FnMut(u32, u32) -> bool,
    ) -> Self {
        let rect = rect.intersect(&PixelRect::new(0, 0, image_width, image_height));
        let mut data = Vec::with_capacity(rect.area() as usize);
        for y in rect.y..rect.bottom() {
            for x in rect.x..rect.right() {
                data.push(f(x, y) as u8);
            }
        }
        Self {
            image_width,
            image_height,
            rect,
            data,
        }
    }

    /// A mask from a full-image buffer (row-major, non-zero means set), cropped to the set pixels.
    pub fn from_full(image_width: u32, image_height: u32, full: &[u8]) -> Self {
        assert_eq!(full.len() as u64, image_width as u64 * image_height as u64);
        let full_rect = PixelRect::new(0, 0, image_width, image_height);
        let tight = tight_rect_of(full_rect, full, image_width as usize);
        match tight {
            None => Self::empty(image_width, image_height),
            Some(r) => Self::from_fn(image_width, image_height, r, |x, y| {
                full[y as usize * image_width as usize + x as usize] != 0
            }),
        }
    }

    pub fn image_width(&self) -> u32 {
        self.image_width
    }

    pub fn image_height(&self) -> u32 {
        self.image_height
    }

    /// The rectangle outside which every pixel is background.
    pub fn rect(&self) -> PixelRect {
        self.rect
    }

    /// The stored pixels of [`Mask::rect`], row-major, 0 or 1.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether pixel `(x, y)` is set; false outside the image.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if !self.rect.contains(x, y) {
            return false;
        }
        let i = (y - self.rect.y) as usize * self.rect.width as usize + (x - self.rect.x) as usize;
        self.data[i] != 0
    }

    /// Row `y` of the stored rectangle (absolute image row), or `None` outside it.
    pub fn row(&self, y: u32) -> Option<&[u8]> {
        if y < self.rect.y || y >= self.rect.bottom() || self.rect.width == 0 {
            return None;
        }
        let w = self.rect.width as usize;
        let start = (y - self.rect.y) as usize * w;
        Some(&self.data[start..start + w])
    }

    /// Number of set pixels.
    pub fn area(&self) -> u64 {
        self.data.iter().map(|&v| v as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.data.iter().all(|&v| v == 0)
    }

    /// The smallest rectangle holding every set pixel, `None` for an empty mask.
    pub fn tight_rect(&self) -> Option<PixelRect> {
        let local = tight_rect_of(
            PixelRect::new(0, 0, self.rect.width, self.rect.height),
            &self.data,
            self.rect.width as usize,
        )?;
        Some(PixelRect::new(
            local.x + self.rect.x,
            local.y + self.rect.y,
            local.width,
            local.height,
        ))
    }

    /// Number of pixels set in both masks. Masks of different image sizes share no pixel.
    pub fn intersection(&self, other: &Mask) -> u64 {
        if self.image_width != other.image_width || self.image_height != other.image_height {
            return 0;
        }
        let r = self.rect.intersect(&other.rect);
        let mut n = 0u64;
        for y in r.y..r.bottom() {
            let (Some(a), Some(b)) = (self.row(y), other.row(y)) else {
                continue;
            };
            let a = &a[(r.x - self.rect.x) as usize..][..r.width as usize];
            let b = &b[(r.x - other.rect.x) as usize..][..r.width as usize];
            n += a.iter().zip(b).map(|(&p, &q)| (p & q) as u64).sum::<u64>();
        }
        n
    }

    /// Intersection over union of the set pixels; 0 when both masks are empty.
    pub fn iou(&self, other: &Mask) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }

    /// Clears every pixel that is set in `other` (e.g. the part of an instance hidden by a nearer one).
    pub fn subtract(&mut self, other: &Mask) {
        let r = self.rect.intersect(&other.rect);
        let w = self.rect.width as usize;
        for y in r.y..r.bottom() {
            let Some(b) = other.row(y) else { continue };
            let b = &b[(r.x - other.rect.x) as usize..][..r.width as usize];
            let start = (y - self.rect.y) as usize * w + (r.x - self.rect.x) as usize;
            for (a, &q) in self.data[start..start + r.width as usize].iter_mut().zip(b) {
                *a &= !q & 1;
            }
        }
    }

    /// Writes `value` into `target` (a full image, row-major, `image_width` wide) wherever the
    /// mask is set; used for instance-id images.
    pub fn paint<T: Copy>(&self, target: &mut [T], value: T) {
        let w = self.image_width as usize;
        for y in self.rect.y..self.rect.bottom() {
            let row = self.row(y).expect("row inside rect");
            let base = y as usize * w + self.rect.x as usize;
            for (i, &v) in row.iter().enumerate() {
                if v != 0 {
                    target[base + i] = value;
                }
            }
        }
    }

    /// COCO run-length encoding (column-major, starting with a run of background).
    pub fn to_rle(&self) -> Rle {
        let h = self.image_height as u64;
        let mut counts: Vec<u32> = Vec::new();
        // Runs alternate background/foreground; `current` is the value of the run being counted.
        let mut current = 0u8;
        let mut run: u64 = 0;
        let mut push = |value: u8, len: u64, counts: &mut Vec<u32>| {
            if len == 0 {
                return;
            }
            if value != current {
                counts.push(run as u32);
                current = value;
                run = 0;
            }
            run += len;
        };
        let r = self.rect;
        // Columns left of the rectangle, then each column of it, then those to its right.
        push(0, r.x as u64 * h, &mut counts);
        for cx in 0..r.width as usize {
            push(0, r.y as u64, &mut counts);
            for cy in 0..r.height as usize {
                push(self.data[cy * r.width as usize + cx], 1, &mut counts);
            }
            push(0, h - r.bottom() as u64, &mut counts);
        }
        push(0, (self.image_width - r.right()) as u64 * h, &mut counts);
        counts.push(run as u32);
        Rle {
            height: self.image_height,
            width: self.image_width,
            counts,
        }
    }
}

/// The tight rectangle (in the coordinates of `full`) of the non-zero pixels of a row-major
/// buffer of `stride` columns covering `full`.
fn tight_rect_of(full: PixelRect, data: &[u8], stride: usize) -> Option<PixelRect> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0u32, 0u32);
    for y in 0..full.height {
        let row = &data[y as usize * stride..][..full.width as usize];
        let Some(first) = row.iter().position(|&v| v != 0) else {
            continue;
        };
        let last = row
            .iter()
            .rposition(|&v| v != 0)
            .expect("row has a set pixel");
        x0 = x0.min(first as u32);
        x1 = x1.max(last as u32 + 1);
        y0 = y0.min(y);
        y1 = y + 1;
    }
    (x0 != u32::MAX).then(|| PixelRect::new(full.x + x0, full.y + y0, x1 - x0, y1 - y0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(w: u32, h: u32, cx: f32, cy: f32, r: f32) -> Mask {
        Mask::from_fn(w, h, PixelRect::new(0, 0, w, h), |x, y| {
            let dx = x as f32 + 0.5 - cx;
            let dy = y as f32 + 0.5 - cy;
            dx * dx + dy * dy <= r * r
        })
    }

    #[test]
    fn from_full_crops_to_set_pixels() {
        let mut full = vec![0u8; 8 * 5];
        full[8 + 2] = 1;
        full[3 * 8 + 5] = 7;
        let m = Mask::from_full(8, 5, &full);
        assert_eq!(m.rect(), PixelRect::new(2, 1, 4, 3));
        assert_eq!(m.area(), 2);
        assert!(m.get(2, 1) && m.get(5, 3) && !m.get(3, 1) && !m.get(0, 0));
        assert!(Mask::from_full(8, 5, &[0; 40]).is_empty());
    }

    #[test]
    fn iou_matches_a_brute_force_count() {
        let a = disc(40, 30, 15.0, 15.0, 8.0);
        let b = disc(40, 30, 20.0, 12.0, 9.0);
        let (mut inter, mut union) = (0, 0);
        for y in 0..30 {
            for x in 0..40 {
                inter += (a.get(x, y) && b.get(x, y)) as u32;
                union += (a.get(x, y) || b.get(x, y)) as u32;
            }
        }
        assert_eq!(a.intersection(&b), inter as u64);
        assert!((a.iou(&b) - inter as f32 / union as f32).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
    }

    #[test]
    fn tight_rect_of_a_sparse_mask() {
        let m = Mask::new(10, 10, PixelRect::new(2, 2, 4, 4), {
            let mut d = vec![0; 16];
            d[5] = 1; // local (1,1)
            d[10] = 1; // local (2,2)
            d
        });
        assert_eq!(m.tight_rect(), Some(PixelRect::new(3, 3, 2, 2)));
        assert_eq!(Mask::empty(4, 4).tight_rect(), None);
    }

    #[test]
    fn subtract_removes_the_occluded_part() {
        let mut a = disc(30, 30, 10.0, 15.0, 8.0);
        let b = disc(30, 30, 16.0, 15.0, 8.0);
        let before = a.area();
        let inter = a.intersection(&b);
        a.subtract(&b);
        assert_eq!(a.area(), before - inter);
        assert_eq!(a.intersection(&b), 0);
    }

    #[test]
    fn paint_writes_only_set_pixels() {
        let m = disc(12, 9, 6.0, 4.5, 3.0);
        let mut ids = vec![0u16; 12 * 9];
        m.paint(&mut ids, 7);
        for y in 0..9 {
            for x in 0..12 {
                assert_eq!(ids[(y * 12 + x) as usize] == 7, m.get(x, y));
            }
        }
    }
}
