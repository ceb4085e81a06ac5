//! COCO run-length encoding, bit-compatible with pycocotools (`maskApi.c`).

use super::Mask;
#[cfg(test)]
use super::PixelRect;

/// A mask as COCO stores it: alternating run lengths of background and foreground pixels in
/// column-major order, starting with background (so `counts[0]` may be 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rle {
    pub height: u32,
    pub width: u32,
    pub counts: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RleError {
    #[error("RLE counts cover {covered} pixels, but a {width}x{height} mask has {expected}")]
    WrongLength {
        width: u32,
        height: u32,
        covered: u64,
        expected: u64,
    },
    #[error("RLE string has a character outside pycocotools' alphabet at byte {0}")]
    BadCharacter(usize),
    #[error("RLE string decodes to a negative run at run {0}")]
    NegativeRun(usize),
}

impl Rle {
    /// Checks that the runs cover the image exactly.
    pub fn new(height: u32, width: u32, counts: Vec<u32>) -> Result<Self, RleError> {
        let covered: u64 = counts.iter().map(|&c| c as u64).sum();
        let expected = height as u64 * width as u64;
        if covered != expected {
            return Err(RleError::WrongLength {
                width,
                height,
                covered,
                expected,
            });
        }
        Ok(Self {
            height,
            width,
            counts,
        })
    }

    /// Number of foreground pixels.
    pub fn area(&self) -> u64 {
        self.counts
            .iter()
            .skip(1)
            .step_by(2)
            .map(|&c| c as u64)
            .sum()
    }

    /// COCO bbox `[x, y, width, height]` of the foreground (all zero when empty), as pycocotools'
    /// `toBbox` computes it.
    pub fn bbox(&self) -> [f64; 4] {
        let h = self.height as u64;
        let (mut x0, mut y0, mut x1, mut y1) = (u64::MAX, u64::MAX, 0u64, 0u64);
        let mut pos = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            let c = c as u64;
            if i % 2 == 1 && c > 0 {
                let (first, last) = (pos, pos + c - 1);
                let (fx, fy) = (first / h, first % h);
                let (lx, ly) = (last / h, last % h);
                x0 = x0.min(fx);
                x1 = x1.max(lx);
                if fx == lx {
                    y0 = y0.min(fy);
                    y1 = y1.max(ly);
                } else {
                    // The run wraps past a column end, so it spans every row.
                    y0 = 0;
                    y1 = h - 1;
                }
            }
            pos += c;
        }
        if x0 == u64::MAX {
            return [0.0; 4];
        }
        [
            x0 as f64,
            y0 as f64,
            (x1 - x0 + 1) as f64,
            (y1 - y0 + 1) as f64,
        ]
    }

    /// Number of pixels set in both (0 for masks of different sizes).
    pub fn intersection(&self, other: &Rle) -> u64 {
        if self.height != other.height || self.width != other.width {
            return 0;
        }
        // Walk both run lists at once, as pycocotools' rleArea of a merged RLE does.
        let (mut i, mut j) = (0usize, 0usize);
        let (mut ca, mut cb) = (
            self.counts.first().copied().unwrap_or(0) as u64,
            other.counts.first().copied().unwrap_or(0) as u64,
        );
        let mut inter = 0u64;
        while i < self.counts.len() && j < other.counts.len() {
            let step = ca.min(cb);
            if i % 2 == 1 && j % 2 == 1 {
                inter += step;
            }
            ca -= step;
            cb -= step;
            if ca == 0 {
                i += 1;
                ca = self.counts.get(i).copied().unwrap_or(0) as u64;
            }
            if cb == 0 {
                j += 1;
                cb = other.counts.get(j).copied().unwrap_or(0) as u64;
            }
        }
        inter
    }

    /// Mask IoU as pycocotools computes it for non-crowd regions.
    pub fn iou(&self, other: &Rle) -> f64 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f64 / union as f64
        }
    }

    /// The mask these runs describe.
    pub fn to_mask(&self) -> Mask {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut full = vec![0u8; w * h];
        let mut pos = 0usize;
        for (i, &c) in self.counts.iter().enumerate() {
            let c = c as usize;
            if i % 2 == 1 {
                for p in pos..(pos + c).min(w * h) {
                    let (x, y) = (p / h, p % h);
                    full[y * w + x] = 1;
                }
            }
            pos += c;
        }
        Mask::from_full(self.width, self.height, &full)
    }

    /// pycocotools' compressed string (`rleToString`): LEB128-like 5-bit groups, runs after the
    /// second stored as differences to the run two before.
    pub fn to_compressed(&self) -> String {
        let mut s = String::new();
        for (i, &c) in self.counts.iter().enumerate() {
            let mut x = c as i64;
            if i > 2 {
                x -= self.counts[i - 2] as i64;
            }
            loop {
                let mut ch = (x & 0x1f) as u8;
                x >>= 5;
                let more = if ch & 0x10 != 0 { x != -1 } else { x != 0 };
                if more {
                    ch |= 0x20;
                }
                s.push((ch + 48) as char);
                if !more {
                    break;
                }
            }
        }
        s
    }

    /// Parses pycocotools' compressed string (`rleFrString`).
    pub fn from_compressed(height: u32, width: u32, s: &str) -> Result<Self, RleError> {
        let bytes = s.as_bytes();
        let mut counts: Vec<u32> = Vec::new();
        let mut p = 0usize;
        while p < bytes.len() {
            let mut x: i64 = 0;
            let mut k = 0u32;
            loop {
                let b = *bytes.get(p).ok_or(RleError::BadCharacter(p))?;
                if !(48..48 + 64).contains(&b) {
                    return Err(RleError::BadCharacter(p));
                }
                let c = (b - 48) as i64;
                if k >= 12 {
                    return Err(RleError::BadCharacter(p));
                }
                x |= (c & 0x1f) << (5 * k);
                p += 1;
                k += 1;
                if c & 0x20 == 0 {
                    if c & 0x10 != 0 {
                        x |= -1i64 << (5 * k);
                    }
                    break;
                }
            }
            let m = counts.len();
            if m > 2 {
                x += counts[m - 2] as i64;
            }
            if x < 0 || x > u32::MAX as i64 {
                return Err(RleError::NegativeRun(m));
            }
            counts.push(x as u32);
        }
        Self::new(height, width, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_column_major_starting_with_background() {
        // 3x2 image (w=3, h=2); set pixels (x=0,y=1), (x=1,y=0), (x=1,y=1).
        let mut full = vec![0u8; 6];
        full[3] = 1; // (0,1)
        full[1] = 1; // (1,0)
        full[4] = 1; // (1,1)
        let rle = Mask::from_full(3, 2, &full).to_rle();
        // column-major: (0,0)=0 (0,1)=1 (1,0)=1 (1,1)=1 (2,0)=0 (2,1)=0
        assert_eq!(rle.counts, vec![1, 3, 2]);
        assert_eq!(rle.area(), 3);
        assert_eq!(rle.bbox(), [0.0, 0.0, 2.0, 2.0]);
    }

    #[test]
    fn starts_with_zero_run_when_first_pixel_is_set() {
        let rle = Mask::from_full(2, 1, &[1, 0]).to_rle();
        assert_eq!(rle.counts, vec![0, 1, 1]);
    }

    #[test]
    fn empty_mask_is_one_background_run() {
        let rle = Mask::empty(4, 3).to_rle();
        assert_eq!(rle.counts, vec![12]);
        assert_eq!(rle.bbox(), [0.0; 4]);
        assert!(rle.to_mask().is_empty());
    }

    #[test]
    fn round_trips_through_mask_and_string() {
        let mask = Mask::from_fn(37, 23, PixelRect::new(3, 2, 30, 20), |x, y| {
            (x * 7 + y * 3) % 5 < 2 || (x > 20 && y > 10)
        });
        let rle = mask.to_rle();
        assert_eq!(rle.area(), mask.area());
        assert_eq!(rle.to_mask(), Mask::from_full(37, 23, &full_of(&mask)));
        let s = rle.to_compressed();
        // pycocotools.mask.encode of the same array (Fortran order) prints this string.
        assert_eq!(s, PYCOCOTOOLS_37X23);
        assert_eq!(rle.bbox(), [3.0, 2.0, 30.0, 20.0]);
        assert_eq!(Rle::from_compressed(23, 37, &s).unwrap(), rle);
    }

    const PYCOCOTOOLS_37X23: &str = "X211010O010O010O050K010O010O010O020O0O010O010O01030M0O010O010O01010N010O010O010O050K010O010O010O050K010O010O010O020O0O010O010O01030M0O010O010O01010N010O010O010O050K010O010O010O050K010O010O010O020O0O010O010O01030M0O010O010O01010N010O010O010O050K010O010O010O050K010O010O010O020O0O010O010O01030M0O01:1FN010O00:3FM010O;4EL010O:2FO0O01;2EN0O01:1FN010O00:3FM010O;4EL010O:2FO0O01;2EN0O01:1FN010O00:l2";

    fn full_of(m: &Mask) -> Vec<u8> {
        let mut full = vec![0u8; (m.image_width() * m.image_height()) as usize];
        m.paint(&mut full, 1);
        full
    }

    #[test]
    fn compressed_string_matches_pycocotools() {
        // pycocotools.mask.encode of a 4x4 Fortran array with [1:3, 1:3] set gives b'51203'.
        let mask = Mask::from_fn(4, 4, PixelRect::new(0, 0, 4, 4), |x, y| {
            (1..3).contains(&x) && (1..3).contains(&y)
        });
        let rle = mask.to_rle();
        assert_eq!(rle.counts, vec![5, 2, 2, 2, 5]);
        assert_eq!(rle.to_compressed(), "52203");
    }

    #[test]
    fn rejects_runs_that_do_not_cover_the_image() {
        assert!(matches!(
            Rle::new(2, 2, vec![1, 2]),
            Err(RleError::WrongLength { covered: 3, .. })
        ));
        assert!(Rle::from_compressed(2, 2, "4").is_ok());
        assert!(Rle::from_compressed(2, 2, " ").is_err());
    }

    #[test]
    fn intersection_walks_both_run_lists() {
        let a = Mask::from_fn(10, 10, PixelRect::new(0, 0, 10, 10), |x, _| x < 6).to_rle();
        let b =
            Mask::from_fn(10, 10, PixelRect::new(0, 0, 10, 10), |x, y| x >= 4 && y < 5).to_rle();
        assert_eq!(a.intersection(&b), 10);
        assert!((a.iou(&b) - 10.0 / (60.0 + 30.0 - 10.0)).abs() < 1e-12);
    }
}
