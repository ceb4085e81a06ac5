//! Drawing instances over a picture: translucent masks, box outlines and labels, for people to
//! look at (`edgesift segment --overlay`, previews of kept samples).

use crate::geometry::{BBox, Mask};
use image::{Rgb, RgbImage};

/// ultralytics' plotting palette, so overlays look familiar next to theirs.
const PALETTE: [[u8; 3]; 20] = [
    [255, 56, 56],
    [255, 157, 151],
    [255, 112, 31],
    [255, 178, 29],
    [207, 210, 49],
    [72, 249, 10],
    [146, 204, 23],
    [61, 219, 134],
    [26, 147, 52],
    [0, 212, 187],
    [44, 153, 168],
    [0, 194, 255],
    [52, 69, 147],
    [100, 115, 255],
    [0, 24, 236],
    [132, 56, 255],
    [82, 0, 133],
    [203, 56, 255],
    [255, 149, 200],
    [255, 55, 199],
];

/// The colour of a class.
pub fn class_color(class_id: u32) -> Rgb<u8> {
    Rgb(PALETTE[class_id as usize % PALETTE.len()])
}

/// One thing to draw.
pub struct Item<'a> {
    pub class_id: u32,
    pub bbox: BBox,
    pub mask: Option<&'a Mask>,
    pub label: String,
}

/// Draws masks first (half-transparent), then boxes and labels on top.
pub fn draw(image: &mut RgbImage, items: &[Item]) {
    for it in items {
        if let Some(m) = it.mask {
            blend_mask(image, m, class_color(it.class_id), 0.5);
        }
    }
    let thickness = (image.width().max(image.height()) / 400).max(1);
    let glyph_scale = if image.width() >= 640 { 2 } else { 1 };
    for it in items {
        let c = class_color(it.class_id);
        draw_box(image, &it.bbox, c, thickness);
        draw_label(image, &it.bbox, &it.label, c, glyph_scale);
    }
}

fn blend_mask(image: &mut RgbImage, mask: &Mask, color: Rgb<u8>, alpha: f32) {
    let r = mask.rect();
    if mask.image_width() != image.width() || mask.image_height() != image.height() {
        return;
    }
    for y in r.y..r.bottom() {
        let row = mask.row(y).expect("row in rect");
        for (i, &v) in row.iter().enumerate() {
            if v != 0 {
                let p = image.get_pixel_mut(r.x + i as u32, y);
                for k in 0..3 {
                    p.0[k] = (p.0[k] as f32 * (1.0 - alpha) + color.0[k] as f32 * alpha) as u8;
                }
            }
        }
    }
}

fn draw_box(image: &mut RgbImage, b: &BBox, color: Rgb<u8>, thickness: u32) {
    let r = b.pixel_rect(image.width(), image.height());
    if r.is_empty() {
        return;
    }
    let (x0, y0, x1, y1) = (r.x, r.y, r.right() - 1, r.bottom() - 1);
    for t in 0..thickness {
        for x in x0..=x1 {
            for y in [y0.saturating_add(t).min(y1), y1.saturating_sub(t).max(y0)] {
                image.put_pixel(x, y, color);
            }
        }
        for y in y0..=y1 {
            for x in [x0.saturating_add(t).min(x1), x1.saturating_sub(t).max(x0)] {
                image.put_pixel(x, y, color);
            }
        }
    }
}

/// White 8x8-font text on a filled bar of the class colour, above the box (inside it when the box
/// touches the top edge).
fn draw_label(image: &mut RgbImage, b: &BBox, text: &str, color: Rgb<u8>, scale: u32) {
    let glyph = 8 * scale;
    let (w, h) = (
        text.chars().count() as u32 * glyph + 2 * scale,
        glyph + 2 * scale,
    );
    let x0 = (b.x1.max(0.0) as u32).min(image.width().saturating_sub(1));
    let top = b.y1.max(0.0) as u32;
    let y0 = if top >= h { top - h } else { top };
    for y in y0..(y0 + h).min(image.height()) {
        for x in x0..(x0 + w).min(image.width()) {
            image.put_pixel(x, y, color);
        }
    }
    for (i, ch) in text.chars().enumerate() {
        let code = ch as usize;
        let rows = if code < 128 {
            font8x8::legacy::BASIC_LEGACY[code]
        } else {
            font8x8::legacy::BASIC_LEGACY[b'?' as usize]
        };
        let gx = x0 + scale + i as u32 * glyph;
        let gy = y0 + scale;
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..8u32 {
                if bits >> rx & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (x, y) = (gx + rx * scale + dx, gy + ry as u32 * scale + dy);
                        if x < image.width() && y < image.height() {
                            image.put_pixel(x, y, Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::PixelRect;

    #[test]
    fn draws_mask_box_and_label_inside_the_image() {
        let mut img = RgbImage::from_pixel(100, 60, Rgb([0, 0, 0]));
        let mask = Mask::from_fn(100, 60, PixelRect::new(20, 20, 30, 20), |_, _| true);
        let items = [Item {
            class_id: 0,
            bbox: BBox::new(20.0, 20.0, 50.0, 40.0),
            mask: Some(&mask),
            label: "car 0.91".into(),
        }];
        draw(&mut img, &items);
        // Inside the mask: half the class colour.
        assert_eq!(img.get_pixel(35, 30).0, [127, 28, 28]);
        // Box outline in the class colour.
        assert_eq!(img.get_pixel(20, 30).0, PALETTE[0]);
        // Label bar above the box holds white glyph pixels.
        let white = (0..100)
            .flat_map(|x| (10..20).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [255, 255, 255])
            .count();
        assert!(white > 10);
        // Far away: untouched.
        assert_eq!(img.get_pixel(90, 55).0, [0, 0, 0]);
    }

    #[test]
    fn boxes_off_the_image_do_not_panic() {
        let mut img = RgbImage::new(10, 10);
        draw(
            &mut img,
            &[Item {
                class_id: 3,
                bbox: BBox::new(-50.0, 8.0, 500.0, 9999.0),
                mask: None,
                label: "ünïcode".into(),
            }],
        );
    }
}
