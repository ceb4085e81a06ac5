//! Mask outlines as polygons, the way ultralytics' own converters make them.
//!
//! [`outer_contours`] follows the outer border of every 8-connected part of a mask with Suzuki
//! and Abe's border following (the algorithm behind OpenCV's `findContours`), keeping only parts
//! that do not sit inside a hole of another (`RETR_EXTERNAL`) and only the corners of each border
//! (`CHAIN_APPROX_SIMPLE`). Points are pixel indices, i.e. pixel centres in OpenCV's convention,
//! which is what `cv2.fillPoly` (and so ultralytics' training loader) rasterises back.
//!
//! [`mask_to_polygon`] turns a mask into the single polygon a yolo-seg label line holds: the
//! contours, simplified with Douglas-Peucker, joined at their closest points by zero-width
//! bridges (ultralytics' `merge_multi_segment`, the default `strategy="all"` of its
//! `masks2segments`). Holes are not represented (neither can yolo-seg).

use crate::geometry::Mask;

/// The outer border of one 8-connected part of a mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Contour {
    /// Corner pixels of the border, absolute image coordinates, in tracing order.
    pub points: Vec<[u32; 2]>,
    /// Number of pixels of the part (holes excluded).
    pub pixels: u64,
}

/// Neighbour offsets clockwise on screen (y down), starting west.
const DIRS: [(i32, i32); 8] = [
    (-1, 0),
    (-1, -1),
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
];

fn dir_index(dx: i32, dy: i32) -> usize {
    DIRS.iter()
        .position(|&d| d == (dx, dy))
        .expect("neighbours differ by one step")
}

/// The outer borders of the parts of `mask` that are not nested in another part's hole, largest
/// first.
pub fn outer_contours(mask: &Mask) -> Vec<Contour> {
    let r = mask.rect();
    if r.is_empty() {
        return Vec::new();
    }
    // Padded copy: 0 background, 1 foreground; labels go into a separate buffer.
    let (w, h) = (r.width as usize + 2, r.height as usize + 2);
    let mut img = vec![0u8; w * h];
    for y in 0..r.height as usize {
        let row = mask.row(r.y + y as u32).expect("row inside rect");
        img[(y + 1) * w + 1..(y + 1) * w + 1 + row.len()].copy_from_slice(row);
    }
    // Background reachable from the border, 4-connected (the dual of 8-connected foreground).
    let mut outside = vec![false; w * h];
    let mut stack = vec![0usize];
    outside[0] = true;
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        let mut visit = |j: usize| {
            if img[j] == 0 && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - w);
        }
        if y + 1 < h {
            visit(i + w);
        }
    }
    let mut label = vec![0u32; w * h];
    let mut next_label = 0u32;
    let mut out = Vec::new();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            if img[i] == 0 || label[i] != 0 {
                continue;
            }
            // First pixel of a new part in raster order: label the part.
            next_label += 1;
            let mut pixels = 0u64;
            stack.push(i);
            label[i] = next_label;
            while let Some(j) = stack.pop() {
                pixels += 1;
                let (jx, jy) = ((j % w) as i32, (j / w) as i32);
                for (dx, dy) in DIRS {
                    let k = ((jy + dy) as usize) * w + (jx + dx) as usize;
                    if img[k] != 0 && label[k] == 0 {
                        label[k] = next_label;
                        stack.push(k);
                    }
                }
            }
            // Nested in a hole of another part: the pixel above it is not outside.
            if !outside[i - w] {
                continue;
            }
            let pts = trace(&img, w, x as i32, y as i32);
            let points = compress(&pts)
                .into_iter()
                .map(|(px, py)| [px as u32 - 1 + r.x, py as u32 - 1 + r.y])
                .collect();
            out.push(Contour { points, pixels });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.pixels));
    out
}

/// Suzuki-Abe outer border following from `(x, y)`, whose west neighbour is background.
fn trace(img: &[u8], w: usize, x: i32, y: i32) -> Vec<(i32, i32)> {
    let at = |x: i32, y: i32| img[y as usize * w + x as usize] != 0;
    let start = (x, y);
    // 3.1: clockwise from the west neighbour, the first foreground neighbour.
    let mut first = None;
    for (dx, dy) in DIRS {
        if at(x + dx, y + dy) {
            first = Some((x + dx, y + dy));
            break;
        }
    }
    let Some(p1) = first else {
        return vec![start];
    };
    let mut prev = p1;
    let mut cur = start;
    let mut out = vec![start];
    loop {
        // 3.3: counter-clockwise around `cur`, starting after `prev`.
        let k0 = dir_index(prev.0 - cur.0, prev.1 - cur.1);
        let mut nxt = prev;
        for s in 1..=8 {
            let k = (k0 + 8 - s) % 8;
            let (dx, dy) = DIRS[k];
            if at(cur.0 + dx, cur.1 + dy) {
                nxt = (cur.0 + dx, cur.1 + dy);
                break;
            }
        }
        // 3.5: back at the start, about to repeat the first step.
        if nxt == start && cur == p1 {
            break;
        }
        prev = cur;
        cur = nxt;
        if cur != start || nxt != p1 {
            out.push(cur);
        }
        if out.len() > 4 * img.len() {
            break; // cannot happen; guards against an endless loop on a logic error
        }
    }
    if out.len() > 1 && out.last() == Some(&start) {
        out.pop();
    }
    out
}

/// Keeps only the points where the chain changes direction (OpenCV's `CHAIN_APPROX_SIMPLE`).
fn compress(pts: &[(i32, i32)]) -> Vec<(i32, i32)> {
    let n = pts.len();
    if n < 3 {
        return pts.to_vec();
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = pts[(i + n - 1) % n];
        let c = pts[i];
        let q = pts[(i + 1) % n];
        let d1 = (c.0 - p.0, c.1 - p.1);
        let d2 = (q.0 - c.0, q.1 - c.1);
        if d1 != d2 {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push(pts[0]);
    }
    out
}

/// Douglas-Peucker simplification of a closed polygon: no point of the original lies farther than
/// `tolerance` from the result.
pub fn simplify_closed(points: &[[f32; 2]], tolerance: f32) -> Vec<[f32; 2]> {
    let n = points.len();
    if n <= 4 || tolerance <= 0.0 {
        return points.to_vec();
    }
    // Split at the point farthest from the first.
    let far = (1..n)
        .max_by(|&a, &b| dist2(points[0], points[a]).total_cmp(&dist2(points[0], points[b])))
        .expect("n > 4");
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[far] = true;
    dp(points, 0, far, tolerance, &mut keep);
    // Second half wraps around: work on a rotated copy.
    let rotated: Vec<[f32; 2]> = points[far..]
        .iter()
        .chain(std::iter::once(&points[0]))
        .copied()
        .collect();
    let mut keep2 = vec![false; rotated.len()];
    dp(&rotated, 0, rotated.len() - 1, tolerance, &mut keep2);
    for (i, k) in keep2.iter().enumerate().take(rotated.len() - 1) {
        if *k {
            keep[far + i] = true;
        }
    }
    points
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(p, _)| *p)
        .collect()
}

fn dist2(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn dp(p: &[[f32; 2]], i: usize, j: usize, tol: f32, keep: &mut [bool]) {
    if j <= i + 1 {
        return;
    }
    let (a, b) = (p[i], p[j]);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let mut best = (0.0f32, i);
    for (k, &q) in p.iter().enumerate().take(j).skip(i + 1) {
        let d = if len2 < 1e-12 {
            dist2(a, q)
        } else {
            let cross = (q[0] - a[0]) * dy - (q[1] - a[1]) * dx;
            cross * cross / len2
        };
        if d > best.0 {
            best = (d, k);
        }
    }
    if best.0 > tol * tol {
        keep[best.1] = true;
        dp(p, i, best.1, tol, keep);
        dp(p, best.1, j, tol, keep);
    }
}

/// One polygon for a yolo-seg label line: the outer contours of the mask, simplified to
/// `tolerance` pixels, joined into one ring at their closest points by zero-width bridges
/// (ultralytics' `merge_multi_segment`). A bridge rasterises as a line of wrong pixels, so a
/// part is joined only if that raises the polygon's IoU with the mask: when its pixel count over
/// the bridge length beats the IoU so far. The largest part is always kept, parts under
/// `min_part_px` never. Coordinates are pixel centres (OpenCV convention). `None` for an empty
/// mask.
pub fn mask_to_polygon(mask: &Mask, tolerance: f32, min_part_px: u64) -> Option<Vec<[f32; 2]>> {
    let contours = outer_contours(mask);
    let mut parts = contours.iter().map(|c| {
        let pts: Vec<[f32; 2]> = c
            .points
            .iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect();
        (simplify_closed(&pts, tolerance), c.pixels)
    });
    let (mut merged, first) = parts.next()?;
    // Pixels the polygon covers rightly, and the union with the mask, as parts are joined.
    let total: u64 = contours.iter().map(|c| c.pixels).sum();
    let (mut inter, mut union) = (first as f32, total as f32);
    for (part, pixels) in parts {
        if pixels < min_part_px {
            continue;
        }
        let (d2, i, j) = closest(&merged, &part);
        let bridge = d2.sqrt().max(1.0);
        if pixels as f32 * union > bridge * inter {
            join(&mut merged, &part, i, j);
            inter += pixels as f32;
            union += bridge;
        }
    }
    Some(merged)
}

/// Squared distance and indices of the closest pair of vertices of two polygons.
fn closest(a: &[[f32; 2]], b: &[[f32; 2]]) -> (f32, usize, usize) {
    let mut best = (f32::MAX, 0usize, 0usize);
    for (i, &p) in a.iter().enumerate() {
        for (j, &q) in b.iter().enumerate() {
            let d = dist2(p, q);
            if d < best.0 {
                best = (d, i, j);
            }
        }
    }
    best
}

/// Joins `part` into `ring` with a zero-width bridge from `ring[i]` to `part[j]` and back.
fn join(ring: &mut Vec<[f32; 2]>, part: &[[f32; 2]], i: usize, j: usize) {
    let mut insert = Vec::with_capacity(part.len() + 2);
    for k in 0..=part.len() {
        insert.push(part[(j + k) % part.len()]);
    }
    insert.push(ring[i]);
    ring.splice(i + 1..i + 1, insert);
}

/// Rasterises a polygon given in pixel-centre coordinates the way `cv2.fillPoly` does: a pixel is
/// set when its centre is inside or on the outline. Returns a `width x height` mask.
pub fn fill_polygon(points: &[[f32; 2]], width: u32, height: u32) -> Mask {
    rasterize(points, width, height, true)
}

/// Rasterises a polygon in COCO's coordinates (pixel `(i, j)` covers `[i, i+1) x [j, j+1)`): a
/// pixel is set when its centre lies inside. Close to pycocotools' `frPyObjects` (which
/// supersamples), within a pixel along the outline.
pub fn fill_coco_polygon(points: &[[f32; 2]], width: u32, height: u32) -> Mask {
    let shifted: Vec<[f32; 2]> = points.iter().map(|p| [p[0] - 0.5, p[1] - 0.5]).collect();
    rasterize(&shifted, width, height, false)
}

fn rasterize(points: &[[f32; 2]], width: u32, height: u32, outline: bool) -> Mask {
    let (w, h) = (width as usize, height as usize);
    let mut full = vec![0u8; w * h];
    let n = points.len();
    if n == 0
        || w == 0
        || h == 0
        || points
            .iter()
            .any(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        return Mask::empty(width, height);
    }
    // Interior: even-odd crossings of each row's centre line (rows at integer y).
    let (ymin, ymax) = points
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    let mut xs: Vec<f32> = Vec::new();
    let y0 = ymin.ceil().max(0.0) as usize;
    let y1 = (ymax.floor().min(h as f32 - 1.0)).max(-1.0);
    if y1 >= 0.0 {
        for y in y0..=y1 as usize {
            let yc = y as f32;
            xs.clear();
            for k in 0..n {
                let (a, b) = (points[k], points[(k + 1) % n]);
                if (a[1] <= yc && b[1] > yc) || (b[1] <= yc && a[1] > yc) {
                    xs.push(a[0] + (yc - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
                }
            }
            xs.sort_by(|a, b| a.total_cmp(b));
            for pair in xs.chunks_exact(2) {
                let xa = pair[0].ceil().max(0.0) as usize;
                let xb = pair[1].floor().min(w as f32 - 1.0);
                if xb >= 0.0 && xa <= xb as usize {
                    full[y * w + xa..=y * w + xb as usize].fill(1);
                }
            }
        }
    }
    if outline {
        for k in 0..n {
            // Only the part of the edge near the image matters (and keeps the loop short).
            let Some((a, b)) = clip_segment(points[k], points[(k + 1) % n], w as f32, h as f32)
            else {
                continue;
            };
            let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as usize;
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let x = (a[0] + (b[0] - a[0]) * t).round();
                let y = (a[1] + (b[1] - a[1]) * t).round();
                if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h {
                    full[y as usize * w + x as usize] = 1;
                }
            }
        }
    }
    Mask::from_full(width, height, &full)
}

/// Liang-Barsky: the part of segment `a`-`b` inside `[-1, w] x [-1, h]` (in f64: coordinates
/// far outside the image would lose the pixels in f32).
fn clip_segment(a: [f32; 2], b: [f32; 2], w: f32, h: f32) -> Option<([f32; 2], [f32; 2])> {
    let (ax, ay) = (a[0] as f64, a[1] as f64);
    let (dx, dy) = (b[0] as f64 - ax, b[1] as f64 - ay);
    let (mut t0, mut t1) = (0f64, 1f64);
    for (p, q) in [
        (-dx, ax + 1.0),
        (dx, w as f64 - ax),
        (-dy, ay + 1.0),
        (dy, h as f64 - ay),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some((
        [(ax + t0 * dx) as f32, (ay + t0 * dy) as f32],
        [(ax + t1 * dx) as f32, (ay + t1 * dy) as f32],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::polygon_tolerance;
    use crate::geometry::PixelRect;

    fn mask_of(w: u32, h: u32, f: impl FnMut(u32, u32) -> bool) -> Mask {
        let m = Mask::from_fn(w, h, PixelRect::new(0, 0, w, h), f);
        let mut full = vec![0u8; (w * h) as usize];
        m.paint(&mut full, 1);
        Mask::from_full(w, h, &full)
    }

    #[test]
    fn rectangle_has_four_corners() {
        let m = mask_of(20, 10, |x, y| (3..9).contains(&x) && (2..7).contains(&y));
        let c = outer_contours(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].pixels, 30);
        let mut pts = c[0].points.clone();
        pts.sort();
        assert_eq!(pts, vec![[3, 2], [3, 6], [8, 2], [8, 6]]);
    }

    #[test]
    fn single_pixels_and_thin_lines() {
        let dot = mask_of(5, 5, |x, y| x == 2 && y == 3);
        assert_eq!(outer_contours(&dot)[0].points, vec![[2, 3]]);
        let line = mask_of(10, 5, |x, y| y == 2 && (1..8).contains(&x));
        let c = outer_contours(&line);
        assert_eq!(c.len(), 1);
        let mut pts = c[0].points.clone();
        pts.sort();
        pts.dedup();
        assert_eq!(pts, vec![[1, 2], [7, 2]]);
        let diag = mask_of(6, 6, |x, y| x == y);
        assert_eq!(
            outer_contours(&diag).len(),
            1,
            "diagonal pixels are 8-connected"
        );
    }

    #[test]
    fn parts_are_separate_and_nested_ones_are_dropped() {
        // A ring with a dot inside its hole, and a separate square.
        let m = mask_of(30, 20, |x, y| {
            let ring = (2..13).contains(&x)
                && (2..13).contains(&y)
                && !((4..11).contains(&x) && (4..11).contains(&y));
            let dot = (7..8).contains(&x) && (7..8).contains(&y);
            let sq = (20..25).contains(&x) && (5..9).contains(&y);
            ring || dot || sq
        });
        let c = outer_contours(&m);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].pixels, 121 - 49);
        assert_eq!(c[1].pixels, 20);
    }

    #[test]
    fn traced_polygon_fills_back_to_the_mask() {
        // A star-shaped blob (no holes) with sharp concave notches.
        let m = mask_of(64, 48, |x, y| {
            let (dx, dy) = (x as f32 - 30.0, y as f32 - 22.0);
            let r = (dx * dx + dy * dy).sqrt();
            let a = dy.atan2(dx);
            r < 13.0 + 6.0 * (5.0 * a).sin() + 2.0 * (13.0 * a).cos()
        });
        let c = outer_contours(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].pixels, m.area());
        let poly: Vec<[f32; 2]> = c[0]
            .points
            .iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect();
        let back = fill_polygon(&poly, 64, 48);
        assert_eq!(back, m, "exact without simplification");
        let simple = simplify_closed(&poly, polygon_tolerance(m.area()));
        assert!(simple.len() < poly.len());
        assert!(fill_polygon(&simple, 64, 48).iou(&m) > 0.95);
    }

    #[test]
    fn holes_are_filled() {
        let m = mask_of(20, 20, |x, y| {
            (2..15).contains(&x)
                && (2..15).contains(&y)
                && !((6..10).contains(&x) && (6..10).contains(&y))
        });
        let poly = mask_to_polygon(&m, 0.0, 1).unwrap();
        assert_eq!(fill_polygon(&poly, 20, 20).area(), 13 * 13);
    }

    #[test]
    fn joined_parts_keep_both_areas() {
        let m = mask_of(40, 20, |x, y| {
            ((2..12).contains(&x) || (20..35).contains(&x)) && (4..14).contains(&y)
        });
        let poly = mask_to_polygon(&m, 0.5, 4).unwrap();
        let back = fill_polygon(&poly, 40, 20);
        assert!(back.iou(&m) > 0.95, "{}", back.iou(&m));
        // Only the largest part when the other is below the minimum.
        let largest = mask_to_polygon(&m, 0.5, 1000).unwrap();
        let back = fill_polygon(&largest, 40, 20);
        assert_eq!(back.area(), 150);
        // A speck far away is not worth its bridge.
        let speck = mask_of(100, 20, |x, y| {
            ((2..12).contains(&x) && (4..14).contains(&y))
                || (x == 90 && y == 5)
                || (x == 91 && y == 5)
        });
        let poly = mask_to_polygon(&speck, 0.5, 1).unwrap();
        assert_eq!(fill_polygon(&poly, 100, 20).area(), 100);
        assert!(mask_to_polygon(&Mask::empty(5, 5), 0.5, 1).is_none());
    }

    #[test]
    fn far_away_outlines_are_clipped_not_walked() {
        let m = fill_polygon(&[[-1e9, 2.0], [1e9, 2.0], [1e9, 4.0], [-1e9, 4.0]], 10, 8);
        assert_eq!(m.area(), 30);
        assert!(fill_polygon(&[[f32::NAN, 0.0], [1.0, 1.0], [2.0, 0.0]], 4, 4).is_empty());
    }

    #[test]
    fn coco_polygons_use_pixel_corners() {
        let m = fill_coco_polygon(&[[2.0, 1.0], [6.0, 1.0], [6.0, 4.0], [2.0, 4.0]], 8, 6);
        assert_eq!(m.area(), 12);
        assert_eq!(m.tight_rect(), Some(PixelRect::new(2, 1, 4, 3)));
    }

    #[test]
    fn douglas_peucker_keeps_corners() {
        let sq: Vec<[f32; 2]> = (0..10)
            .map(|i| [i as f32, 0.0])
            .chain((0..10).map(|i| [10.0, i as f32]))
            .chain((0..10).map(|i| [10.0 - i as f32, 10.0]))
            .chain((0..10).map(|i| [0.0, 10.0 - i as f32]))
            .collect();
        let s = simplify_closed(&sq, 0.5);
        assert_eq!(s.len(), 4, "{s:?}");
    }
}
