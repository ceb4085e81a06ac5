/// An axis-aligned box in continuous image coordinates: pixel `(i, j)` covers `[i, i+1) x [j, j+1)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// From centre, width and height (the layout of YOLO's raw output).
    pub fn from_cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The box clamped to `[0, width] x [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }

    /// The whole pixels the box touches, clipped to an image of the given size.
    pub fn pixel_rect(&self, width: u32, height: u32) -> PixelRect {
        let x0 = self.x1.floor().clamp(0.0, width as f32) as u32;
        let y0 = self.y1.floor().clamp(0.0, height as f32) as u32;
        let x1 = self.x2.ceil().clamp(0.0, width as f32) as u32;
        let y1 = self.y2.ceil().clamp(0.0, height as f32) as u32;
        PixelRect::new(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
    }

    /// COCO's `[x, y, width, height]`.
    pub fn to_xywh(&self) -> [f32; 4] {
        [self.x1, self.y1, self.width(), self.height()]
    }
}

/// A rectangle of whole pixels: columns `x..x+width`, rows `y..y+height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelRect {
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && x < self.right() && y >= self.y && y < self.bottom()
    }

    /// The overlap of two rectangles (empty, at the origin, when they are disjoint).
    pub fn intersect(&self, other: &PixelRect) -> PixelRect {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        if x1 <= x0 || y1 <= y0 {
            PixelRect::default()
        } else {
            PixelRect::new(x0, y0, x1 - x0, y1 - y0)
        }
    }

    pub fn to_bbox(&self) -> BBox {
        BBox::new(
            self.x as f32,
            self.y as f32,
            self.right() as f32,
            self.bottom() as f32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(BBox::default().iou(&BBox::default()), 0.0);
    }

    #[test]
    fn pixel_rect_covers_partial_pixels_and_clips() {
        let r = BBox::new(1.5, 2.2, 4.1, 3.0).pixel_rect(100, 100);
        assert_eq!(r, PixelRect::new(1, 2, 4, 1));
        let r = BBox::new(-5.0, -5.0, 500.0, 7.5).pixel_rect(100, 50);
        assert_eq!(r, PixelRect::new(0, 0, 100, 8));
    }

    #[test]
    fn rect_intersection() {
        let a = PixelRect::new(0, 0, 10, 10);
        let b = PixelRect::new(5, 8, 10, 10);
        assert_eq!(a.intersect(&b), PixelRect::new(5, 8, 5, 2));
        assert!(a.intersect(&PixelRect::new(10, 0, 3, 3)).is_empty());
    }
}
