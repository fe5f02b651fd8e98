//! Pose images. [`openpose`] draws a pose exactly as the OpenPose annotator of ControlNet 1.1
//! does (controlnet_aux's `draw_bodypose`: 17 limbs as filled ellipses at 60 % of their colour,
//! then 18 joints as discs of radius 4, on black), which is what OpenPose ControlNets were
//! trained on; its drawing primitives follow OpenCV's `ellipse2Poly`, `fillConvexPoly` and
//! `circle` to the pixel (the fixture `tests/fixtures/openpose` checks it against OpenCV).
//! [`silhouette`] draws a body shape to start an img2img pass from when no ControlNet is there.

use mintframe_types::Joint;
use mintframe_types::pose::Pose;

/// An RGB image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, fill: [u8; 3]) -> Canvas {
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            data.extend_from_slice(&fill);
        }
        Canvas {
            width,
            height,
            data,
        }
    }

    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0
            && y >= 0
            && (x as u64) < u64::from(self.width)
            && (y as u64) < u64::from(self.height)
        {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Inclusive span on row `y`; an empty span (`x1 > x2`) writes nothing.
    fn hline(&mut self, y: i64, x1: i64, x2: i64, c: [u8; 3]) {
        let mut x = x1;
        while x <= x2 {
            self.put(x, y, c);
            x += 1;
        }
    }
}

/// The limbs, 1-based joint pairs in the annotator's order; each takes the colour of its index.
const LIMBS: [(usize, usize); 17] = [
    (2, 3),
    (2, 6),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 8),
    (2, 9),
    (9, 10),
    (10, 11),
    (2, 12),
    (12, 13),
    (13, 14),
    (2, 1),
    (1, 15),
    (15, 17),
    (1, 16),
    (16, 18),
];

/// OpenPose's 18 body colours (RGB), joint i and limb i.
pub const COLORS: [[u8; 3]; 18] = [
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [255, 255, 0],
    [170, 255, 0],
    [85, 255, 0],
    [0, 255, 0],
    [0, 255, 85],
    [0, 255, 170],
    [0, 255, 255],
    [0, 170, 255],
    [0, 85, 255],
    [0, 0, 255],
    [85, 0, 255],
    [170, 0, 255],
    [255, 0, 255],
    [255, 0, 170],
    [255, 0, 85],
];

/// OpenCV's table of sines at whole degrees 0..=450, each rounded to seven decimals.
fn sin_table() -> [f32; 451] {
    let mut t = [0f32; 451];
    for (i, v) in t.iter_mut().enumerate() {
        let s = (i as f64).to_radians().sin();
        *v = ((s * 1e7).round() / 1e7) as f32;
    }
    t
}

/// `cvRound`: to nearest, ties to even.
fn cv_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// `cv::ellipse2Poly` for whole-degree arcs: the polygon through the ellipse, rounded, with
/// consecutive repeats dropped.
fn ellipse_poly(
    center: (i64, i64),
    axes: (i64, i64),
    angle: i64,
    arc: (i64, i64),
    delta: i64,
) -> Vec<(i64, i64)> {
    let table = sin_table();
    let mut angle = angle;
    while angle < 0 {
        angle += 360;
    }
    while angle > 360 {
        angle -= 360;
    }
    let (mut start, mut end) = if arc.0 > arc.1 { (arc.1, arc.0) } else { arc };
    while start < 0 {
        start += 360;
        end += 360;
    }
    while end > 360 {
        end -= 360;
        start -= 360;
    }
    if end - start > 360 {
        start = 0;
        end = 360;
    }
    let alpha = f64::from(table[(450 - angle) as usize]);
    let beta = f64::from(table[angle as usize]);
    let mut raw = Vec::new();
    let mut i = start;
    while i < end + delta {
        let mut a = i.min(end);
        if a < 0 {
            a += 360;
        }
        let x = axes.0 as f64 * f64::from(table[(450 - a) as usize]);
        let y = axes.1 as f64 * f64::from(table[a as usize]);
        raw.push((
            center.0 as f64 + x * alpha - y * beta,
            center.1 as f64 + x * beta + y * alpha,
        ));
        i += delta;
    }
    if raw.len() == 1 {
        raw.push(raw[0]);
    }
    let mut pts: Vec<(i64, i64)> = Vec::with_capacity(raw.len());
    for (x, y) in raw {
        let p = (cv_round(x), cv_round(y));
        if pts.last() != Some(&p) {
            pts.push(p);
        }
    }
    if pts.len() == 1 {
        pts = vec![center, center];
    }
    pts
}

/// `cv::clipLine` on an image of `w`×`h`: false when the segment misses the image.
fn clip_line(w: i64, h: i64, p1: &mut (i64, i64), p2: &mut (i64, i64)) -> bool {
    let (right, bottom) = (w - 1, h - 1);
    if w <= 0 || h <= 0 {
        return false;
    }
    let (x1, y1) = (&mut p1.0, &mut p1.1);
    let (x2, y2) = (&mut p2.0, &mut p2.1);
    let code = |x: i64, y: i64| {
        i32::from(x < 0)
            + i32::from(x > right) * 2
            + i32::from(y < 0) * 4
            + i32::from(y > bottom) * 8
    };
    let mut c1 = code(*x1, *y1);
    let mut c2 = code(*x2, *y2);
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            *x1 += ((a - *y1) as f64 * (*x2 - *x1) as f64 / (*y2 - *y1) as f64) as i64;
            *y1 = a;
            c1 = i32::from(*x1 < 0) + i32::from(*x1 > right) * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            *x2 += ((a - *y2) as f64 * (*x2 - *x1) as f64 / (*y2 - *y1) as f64) as i64;
            *y2 = a;
            c2 = i32::from(*x2 < 0) + i32::from(*x2 > right) * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                *y1 += ((a - *x1) as f64 * (*y2 - *y1) as f64 / (*x2 - *x1) as f64) as i64;
                *x1 = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                *y2 += ((a - *x2) as f64 * (*y2 - *y1) as f64 / (*x2 - *x1) as f64) as i64;
                *x2 = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV's 8-connected `Line` (a `LineIterator` walked left to right, clipped first).
fn line(img: &mut Canvas, a: (i64, i64), b: (i64, i64), c: [u8; 3]) {
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    let (mut p1, mut p2) = (a, b);
    let outside = |p: (i64, i64)| p.0 < 0 || p.0 >= w || p.1 < 0 || p.1 >= h;
    if (outside(p1) || outside(p2)) && !clip_line(w, h, &mut p1, &mut p2) {
        return;
    }
    let (mut sx, mut sy) = (1i64, 1i64);
    let mut dx = p2.0 - p1.0;
    let mut dy = p2.1 - p1.1;
    if dx < 0 {
        dx = -dx;
        dy = -dy;
        p1 = p2;
    }
    if dy < 0 {
        dy = -dy;
        sy = -1;
    }
    let vert = dy > dx;
    if vert {
        std::mem::swap(&mut dx, &mut dy);
        std::mem::swap(&mut sx, &mut sy);
    }
    let mut err = dx - (dy + dy);
    let plus = dx + dx;
    let minus = -(dy + dy);
    let (mut x, mut y) = p1;
    for _ in 0..=dx {
        img.put(x, y, c);
        let step_minor = err < 0;
        err += minus + if step_minor { plus } else { 0 };
        if vert {
            y += sx;
            if step_minor {
                x += sy;
            }
        } else {
            x += sx;
            if step_minor {
                y += sy;
            }
        }
    }
}

const XY_SHIFT: i64 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// OpenCV's `FillConvexPoly` for LINE_8 and shift 0: the outline, then the scanlines.
fn fill_convex(img: &mut Canvas, v: &[(i64, i64)], c: [u8; 3]) {
    let npts = v.len();
    if npts == 0 {
        return;
    }
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    let delta1 = XY_ONE >> 1;
    let delta2 = delta1;
    let mut p0 = v[npts - 1];
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (v[0].0, v[0].0, v[0].1, v[0].1);
    let mut imin = 0;
    for (i, &p) in v.iter().enumerate() {
        if p.1 < ymin {
            ymin = p.1;
            imin = i;
        }
        ymax = ymax.max(p.1);
        xmax = xmax.max(p.0);
        xmin = xmin.min(p.0);
        line(img, p0, p, c);
        p0 = p;
    }
    if npts < 3 || xmax < 0 || ymax < 0 || xmin >= w || ymin >= h {
        return;
    }
    let ymax = ymax.min(h - 1);
    #[derive(Clone, Copy)]
    struct Edge {
        idx: usize,
        di: usize,
        x: i64,
        dx: i64,
        ye: i64,
    }
    let mut edge = [
        Edge {
            idx: imin,
            di: 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
        Edge {
            idx: imin,
            di: npts - 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
    ];
    let mut edges = npts as i64;
    let mut y = ymin;
    loop {
        for e in edge.iter_mut() {
            if y >= e.ye {
                let mut idx0 = e.idx;
                let mut idx = (idx0 + e.di) % npts;
                loop {
                    let more = edges > 0;
                    edges -= 1;
                    if !more {
                        break;
                    }
                    let ty = v[idx].1;
                    if ty > y {
                        let xs = v[idx0].0 << XY_SHIFT;
                        let xe = v[idx].0 << XY_SHIFT;
                        e.ye = ty;
                        e.dx = ((xe - xs) * 2 + (ty - y)) / (2 * (ty - y));
                        e.x = xs;
                        e.idx = idx;
                        break;
                    }
                    idx0 = idx;
                    idx = (idx + e.di) % npts;
                }
            }
        }
        if edges < 0 {
            break;
        }
        if y >= 0 {
            let (l, r) = if edge[0].x > edge[1].x {
                (1, 0)
            } else {
                (0, 1)
            };
            let mut x1 = (edge[l].x + delta1) >> XY_SHIFT;
            let mut x2 = (edge[r].x + delta2) >> XY_SHIFT;
            if x2 >= 0 && x1 < w {
                x1 = x1.max(0);
                x2 = x2.min(w - 1);
                img.hline(y, x1, x2, c);
            }
        }
        edge[0].x += edge[0].dx;
        edge[1].x += edge[1].dx;
        y += 1;
        if y > ymax {
            break;
        }
    }
}

/// OpenCV's filled `Circle` (LINE_8, shift 0).
fn disc(img: &mut Canvas, cx: i64, cy: i64, r: i64, c: [u8; 3]) {
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    let (mut err, mut dx, mut dy, mut plus, mut minus) = (0i64, r, 0i64, 1i64, (r << 1) - 1);
    let inside = cx >= r && cx < w - r && cy >= r && cy < h - r;
    while dx >= dy {
        let (y11, y12, y21, y22) = (cy - dy, cy + dy, cy - dx, cy + dx);
        let (mut x11, mut x12, mut x21, mut x22) = (cx - dx, cx + dx, cx - dy, cx + dy);
        if inside {
            img.hline(y11, x11, x12, c);
            img.hline(y12, x11, x12, c);
            img.hline(y21, x21, x22, c);
            img.hline(y22, x21, x22, c);
        } else if x11 < w && x12 >= 0 && y21 < h && y22 >= 0 {
            x11 = x11.max(0);
            x12 = x12.min(w - 1);
            for yy in [y11, y12] {
                if yy >= 0 && yy < h {
                    img.hline(yy, x11, x12, c);
                }
            }
            if x21 < w && x22 >= 0 {
                x21 = x21.max(0);
                x22 = x22.min(w - 1);
                for yy in [y21, y22] {
                    if yy >= 0 && yy < h {
                        img.hline(yy, x21, x22, c);
                    }
                }
            }
        }
        dy += 1;
        err += plus;
        plus += 2;
        if err > 0 {
            err -= minus;
            dx -= 1;
            minus -= 2;
        }
    }
}

/// The pose drawn as the OpenPose annotator draws it, on black, `width`×`height`.
pub fn openpose(pose: &Pose, width: u32, height: u32) -> Canvas {
    let mut img = Canvas::new(width, height, [0, 0, 0]);
    let (w, h) = (f64::from(width), f64::from(height));
    let at = |i: usize| -> Option<(f64, f64)> {
        pose.joints
            .get(i)
            .copied()
            .flatten()
            .map(|[x, y]| (f64::from(x), f64::from(y)))
    };
    for (k, &(a, b)) in LIMBS.iter().enumerate() {
        let (Some(p), Some(q)) = (at(a - 1), at(b - 1)) else {
            continue;
        };
        let (y0, y1) = (p.0 * w, q.0 * w);
        let (x0, x1) = (p.1 * h, q.1 * h);
        let mx = (x0 + x1) / 2.0;
        let my = (y0 + y1) / 2.0;
        let length = ((x0 - x1) * (x0 - x1) + (y0 - y1) * (y0 - y1)).sqrt();
        let angle = (x0 - x1).atan2(y0 - y1).to_degrees();
        let poly = ellipse_poly(
            (my as i64, mx as i64),
            ((length / 2.0) as i64, 4),
            angle as i64,
            (0, 360),
            1,
        );
        let col = COLORS[k].map(|c| (f64::from(c) * 0.6) as u8);
        fill_convex(&mut img, &poly, col);
    }
    for (i, col) in COLORS.iter().enumerate() {
        if let Some((x, y)) = at(i) {
            disc(&mut img, (x * w) as i64, (y * h) as i64, 4, *col);
        }
    }
    img
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let (wx, wy) = (p.0 - a.0, p.1 - a.1);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 {
        ((wx * vx + wy * vy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (wx - t * vx, wy - t * vy);
    (dx * dx + dy * dy).sqrt()
}

/// One stroke of the body: which bone it is (the same in every pose), its ends in pixels, its
/// radius in pixels, and whether it lies on the far side of the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bone {
    pub id: u8,
    pub a: (f32, f32),
    pub b: (f32, f32),
    pub radius: f32,
    pub far: bool,
}

/// The body's strokes for `pose` in a `width`×`height` frame, in drawing order: far limbs,
/// torso, head, near limbs. Radii are fractions of the frame height. A bone whose joints the
/// pose hides is left out.
pub fn bones(pose: &Pose, width: u32, height: u32) -> Vec<Bone> {
    let (w, h) = (width as f32, height as f32);
    let p = |j: Joint| pose.joint(j).map(|[x, y]| (x * w, y * h));
    let mid = |a: Option<(f32, f32)>, b: Option<(f32, f32)>| match (a, b) {
        (Some(a), Some(b)) => Some(((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)),
        _ => a.or(b),
    };
    let hips = mid(p(Joint::RightHip), p(Joint::LeftHip));
    let head = p(Joint::Nose)
        .or(mid(p(Joint::RightEar), p(Joint::LeftEar)))
        .or(p(Joint::Neck).map(|n| (n.0, n.1 - 0.1 * h)));
    use Joint::*;
    let mut out = Vec::new();
    let mut push = |id: u8, a: Option<(f32, f32)>, b: Option<(f32, f32)>, r: f32, far: bool| {
        if let (Some(a), Some(b)) = (a, b) {
            out.push(Bone {
                id,
                a,
                b,
                radius: r * h,
                far,
            });
        }
    };
    push(0, p(LeftHip), p(LeftKnee), 0.045, true);
    push(1, p(LeftKnee), p(LeftAnkle), 0.038, true);
    push(2, p(LeftShoulder), p(LeftElbow), 0.035, true);
    push(3, p(LeftElbow), p(LeftWrist), 0.03, true);
    push(4, p(Neck), hips, 0.085, false);
    push(5, p(RightShoulder), p(LeftShoulder), 0.04, false);
    push(6, head, p(Neck), 0.03, false);
    push(7, head, head, 0.085, false);
    push(8, p(RightHip), p(RightKnee), 0.045, false);
    push(9, p(RightKnee), p(RightAnkle), 0.038, false);
    push(10, p(RightShoulder), p(RightElbow), 0.035, false);
    push(11, p(RightElbow), p(RightWrist), 0.03, false);
    out
}

/// The pixels a stroke covers, clipped to the frame.
fn covered(bone: &Bone, width: u32, height: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
    let (w, h) = (width as f32, height as f32);
    let (a, b, r) = (bone.a, bone.b, bone.radius);
    let x0 = ((a.0.min(b.0) - r).floor().max(0.0)) as u32;
    let x1 = ((a.0.max(b.0) + r).ceil().min(w - 1.0)).max(0.0) as u32;
    let y0 = ((a.1.min(b.1) - r).floor().max(0.0)) as u32;
    let y1 = ((a.1.max(b.1) + r).ceil().min(h - 1.0)).max(0.0) as u32;
    (y0..=y1).flat_map(move |y| {
        (x0..=x1).filter_map(move |x| {
            (segment_distance((x as f32 + 0.5, y as f32 + 0.5), a, b) <= r).then_some((x, y))
        })
    })
}

/// A body drawn from the pose in flat colours on `background`, `width`×`height`: limbs and
/// torso as rounded strokes, the head as a disc, the far side of the body darker, so an
/// img2img pass starts from the pose's shape.
pub fn silhouette(
    pose: &Pose,
    width: u32,
    height: u32,
    body: [u8; 3],
    background: [u8; 3],
) -> Canvas {
    let mut img = Canvas::new(width, height, background);
    let far = body.map(|v| (f32::from(v) * 0.7) as u8);
    for bone in bones(pose, width, height) {
        let c = if bone.far { far } else { body };
        for (x, y) in covered(&bone, width, height) {
            img.put(i64::from(x), i64::from(y), c);
        }
    }
    img
}

/// Moves a drawing of a character in pose `from` into pose `to`, bone by bone: every pixel of
/// `dst` that a bone of `to` covers takes the pixel of `src` at the same place relative to the
/// same bone in `from` (along it in proportion, across it in pixels), the nearest bone's when
/// several cover it, near bones over far ones. Pixels of `src` within `tolerance` of
/// `src_background` are not copied, so `dst` keeps what it had there (a silhouette, say).
///
/// This carries a reference frame's colours and costume into every other frame's starting
/// image (img2img chaining) without a detector or a model.
pub fn warp_onto(
    dst: &mut Canvas,
    src: &Canvas,
    from: &Pose,
    to: &Pose,
    src_background: [u8; 3],
    tolerance: u8,
) {
    let source: Vec<Bone> = bones(from, src.width, src.height);
    let target: Vec<Bone> = bones(to, dst.width, dst.height)
        .into_iter()
        .filter(|t| source.iter().any(|s| s.id == t.id))
        .collect();
    let (w, h) = (dst.width, dst.height);
    // Per pixel: the distance to the bone that owns it (scaled by its radius) and that bone.
    let mut owner: Vec<Option<(bool, f32, usize)>> = vec![None; (w * h) as usize];
    for (k, t) in target.iter().enumerate() {
        for (x, y) in covered(t, w, h) {
            let d = segment_distance((x as f32 + 0.5, y as f32 + 0.5), t.a, t.b) / t.radius;
            let slot = &mut owner[(y * w + x) as usize];
            let better = match slot {
                None => true,
                // Near bones cover far ones; among equals the closest wins.
                Some((far, best, _)) => (*far && !t.far) || (*far == t.far && d < *best),
            };
            if better {
                *slot = Some((t.far, d, k));
            }
        }
    }
    let near = |c: &[u8]| {
        c.iter()
            .zip(src_background)
            .all(|(a, b)| a.abs_diff(b) <= tolerance)
    };
    for y in 0..h {
        for x in 0..w {
            let Some((_, _, k)) = owner[(y * w + x) as usize] else {
                continue;
            };
            let t = &target[k];
            let Some(s) = source.iter().find(|s| s.id == t.id) else {
                continue;
            };
            let p = (x as f32 + 0.5, y as f32 + 0.5);
            let (sx, sy) = map_along(p, t, s);
            if sx < 0.0 || sy < 0.0 {
                continue;
            }
            let (sx, sy) = (sx as u32, sy as u32);
            if sx >= src.width || sy >= src.height {
                continue;
            }
            let i = ((sy * src.width + sx) * 3) as usize;
            let c = &src.data[i..i + 3];
            if !near(c) {
                let o = ((y * w + x) * 3) as usize;
                dst.data[o..o + 3].copy_from_slice(c);
            }
        }
    }
}

/// `p`'s place relative to bone `t`, carried to bone `s`: its share along the bone and its
/// signed distance across it (scaled by the ratio of the radii). A bone of no length (the head)
/// moves its pixels by the offset from its centre.
fn map_along(p: (f32, f32), t: &Bone, s: &Bone) -> (f32, f32) {
    let (vx, vy) = (t.b.0 - t.a.0, t.b.1 - t.a.1);
    let len2 = vx * vx + vy * vy;
    let scale = if t.radius > 0.0 {
        s.radius / t.radius
    } else {
        1.0
    };
    if len2 < 1e-6 {
        return (s.a.0 + (p.0 - t.a.0) * scale, s.a.1 + (p.1 - t.a.1) * scale);
    }
    let len = len2.sqrt();
    let (wx, wy) = (p.0 - t.a.0, p.1 - t.a.1);
    let along = (wx * vx + wy * vy) / len2;
    let across = (vx * wy - vy * wx) / len;
    let (ux, uy) = (s.b.0 - s.a.0, s.b.1 - s.a.1);
    let slen = (ux * ux + uy * uy).sqrt();
    let (nx, ny) = if slen < 1e-6 {
        (-vy / len, vx / len)
    } else {
        (-uy / slen, ux / slen)
    };
    (
        s.a.0 + along * ux + across * scale * nx,
        s.a.1 + along * uy + across * scale * ny,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_pose(frame: usize) -> Pose {
        use mintframe_types::{AnimationKind, Facing, View};
        crate::pose::bundled(View::Side, AnimationKind::Walk)
            .expect("bundled")
            .resampled(Facing::E, 8)
            .expect("frames")
            .remove(frame)
    }

    /// A drawing with a different colour in every pixel, so a moved pixel can be traced.
    fn pattern(w: u32, h: u32) -> Canvas {
        let mut c = Canvas::new(w, h, [0, 0, 0]);
        for (i, px) in c.data.chunks_exact_mut(3).enumerate() {
            let i = i as u32;
            px.copy_from_slice(&[(i % w) as u8, (i / w) as u8, 200]);
        }
        c
    }

    #[test]
    fn warping_a_drawing_to_its_own_pose_leaves_every_body_pixel_in_place() {
        let pose = walk_pose(0);
        let src = pattern(128, 128);
        let mut dst = Canvas::new(128, 128, [0, 0, 0]);
        warp_onto(&mut dst, &src, &pose, &pose, [1, 1, 1], 0);
        let mut body = 0;
        for b in bones(&pose, 128, 128) {
            for (x, y) in covered(&b, 128, 128) {
                let i = ((y * 128 + x) * 3) as usize;
                assert_eq!(&dst.data[i..i + 3], &src.data[i..i + 3], "({x}, {y})");
                body += 1;
            }
        }
        assert!(body > 500, "the body covers {body} pixels");
        // Outside the body nothing is written.
        assert_eq!(&dst.data[..3], &[0, 0, 0]);
    }

    #[test]
    fn warping_to_a_moved_pose_moves_the_pixels_with_it() {
        let from = walk_pose(0);
        let to = Pose {
            joints: from
                .joints
                .iter()
                .map(|j| j.map(|[x, y]| [x + 8.0 / 128.0, y + 4.0 / 128.0]))
                .collect(),
        };
        let src = pattern(128, 128);
        let mut dst = Canvas::new(128, 128, [0, 0, 0]);
        warp_onto(&mut dst, &src, &from, &to, [1, 1, 1], 0);
        let mut checked = 0;
        for b in bones(&to, 128, 128) {
            for (x, y) in covered(&b, 128, 128) {
                let i = ((y * 128 + x) * 3) as usize;
                let px = &dst.data[i..i + 3];
                // Rounding may land a pixel one step away, never further.
                assert!(
                    (i64::from(px[0]) - (i64::from(x) - 8)).abs() <= 1
                        && (i64::from(px[1]) - (i64::from(y) - 4)).abs() <= 1,
                    "({x}, {y}) came from ({}, {})",
                    px[0],
                    px[1]
                );
                checked += 1;
            }
        }
        assert!(checked > 500);
    }

    #[test]
    fn a_painted_limb_follows_its_bone_into_the_new_pose_and_the_background_is_not_copied() {
        let from = walk_pose(0);
        let to = walk_pose(4);
        let (w, h) = (96, 96);
        let grey = [208, 208, 208];
        let mut src = silhouette(&from, w, h, [112, 112, 112], grey);
        let arm = bones(&from, w, h)
            .into_iter()
            .find(|b| b.id == 11)
            .expect("near forearm");
        for (x, y) in covered(&arm, w, h) {
            src.put(i64::from(x), i64::from(y), [220, 20, 20]);
        }
        let mut dst = silhouette(&to, w, h, [112, 112, 112], grey);
        let before = dst.clone();
        warp_onto(&mut dst, &src, &from, &to, grey, 10);
        let arm_to = bones(&to, w, h)
            .into_iter()
            .find(|b| b.id == 11)
            .expect("near forearm");
        let px = |c: &Canvas, x: u32, y: u32| {
            let i = ((y * w + x) * 3) as usize;
            [c.data[i], c.data[i + 1], c.data[i + 2]]
        };
        let on_arm: Vec<_> = covered(&arm_to, w, h).collect();
        let red = on_arm
            .iter()
            .filter(|(x, y)| px(&dst, *x, *y) == [220, 20, 20])
            .count();
        assert!(
            red * 10 >= on_arm.len() * 7,
            "{red} of {} forearm pixels are red",
            on_arm.len()
        );
        // No background was copied over the new pose's body.
        for y in 0..h {
            for x in 0..w {
                if px(&before, x, y) != grey {
                    assert_ne!(px(&dst, x, y), grey, "({x}, {y})");
                }
            }
        }
    }

    /// Every case of the fixture, drawn by controlnet_aux's annotator with OpenCV, equals ours
    /// pixel for pixel: template poses and random ones, hidden joints, joints past the edge.
    #[test]
    fn openpose_skeletons_match_the_annotators_drawing_pixel_for_pixel() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openpose");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("poses.json")).expect("index"))
                .expect("json");
        let cases = index["cases"].as_array().expect("cases");
        assert!(cases.len() >= 10);
        for c in cases {
            let name = c["name"].as_str().expect("name");
            let pose: Pose =
                serde_json::from_value(serde_json::json!({ "joints": c["joints"] })).expect("pose");
            let (w, h) = (
                c["width"].as_u64().expect("w") as u32,
                c["height"].as_u64().expect("h") as u32,
            );
            let ours = openpose(&pose, w, h);
            let theirs = crate::read_png_rgba(&dir.join(format!("{name}.png"))).expect("png");
            assert_eq!((theirs.width, theirs.height), (w, h), "{name}");
            let mut diff = 0;
            let mut first = None;
            for i in 0..(w * h) as usize {
                let a = &ours.data[i * 3..i * 3 + 3];
                let b = &theirs.data[i * 4..i * 4 + 3];
                if a != b {
                    diff += 1;
                    first.get_or_insert((i as u32 % w, i as u32 / w, a.to_vec(), b.to_vec()));
                }
            }
            assert_eq!(diff, 0, "{name}: {diff} pixels differ, first {first:?}");
        }
    }

    #[test]
    fn the_sine_table_is_opencvs() {
        let t = sin_table();
        // Spot values from OpenCV's table, including its exact 0.5 and the sign at 360°.
        assert_eq!(t[1], 0.017_452_4_f32);
        assert_eq!(t[30], 0.5);
        assert_eq!(t[44], 0.694_658_4_f32);
        assert_eq!(t[89], 0.999_847_7_f32);
        assert_eq!(t[90], 1.0);
        assert_eq!(t[200], -0.342_020_1_f32);
        assert!(t[360] == 0.0 && t[360].is_sign_negative());
        assert_eq!(t[450], 1.0);
    }

    #[test]
    fn a_filled_disc_of_radius_four_has_opencvs_rows() {
        let mut img = Canvas::new(20, 20, [0, 0, 0]);
        disc(&mut img, 10, 10, 4, [9, 9, 9]);
        let half = |y: usize| (0..20).filter(|&x| img.data[(y * 20 + x) * 3] == 9).count();
        let rows: Vec<usize> = (6..=14).map(half).collect();
        assert_eq!(rows, vec![1, 5, 7, 7, 9, 7, 7, 5, 1]);
    }
}
