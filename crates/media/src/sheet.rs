//! Sprite sheets: frames anchored so a character stands still, then packed into one image (a
//! grid, or tight shelves of trimmed frames) with each frame's place, offset and pivot — what
//! every export (`export`, `aseprite`) writes out in its own words.

use std::path::Path;

use mintframe_types::{Anchor, PlayDirection, SheetLayout};

use crate::MediaError;
use crate::still::Rgba;

fn bad(reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: Path::new("<sheet>").to_owned(),
        reason: reason.into(),
    }
}

/// A named run of frames (inclusive) and how it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Animation {
    pub name: String,
    pub from: usize,
    pub to: usize,
    pub direction: PlayDirection,
    pub looped: bool,
}

/// Where one frame lies in the sheet. `rect` is the part of the sheet holding the frame's
/// pixels (its trimmed box in a tight sheet, the whole frame in a grid); `offset` is where that
/// box sits inside the frame (TexturePacker's `spriteSourceSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub rect: [u32; 4],
    pub offset: [u32; 2],
}

/// A packed sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub image: Rgba,
    /// Every frame's size before trimming (all frames share it).
    pub frame_size: [u32; 2],
    pub placed: Vec<Placed>,
    pub durations_ms: Vec<u32>,
    pub animations: Vec<Animation>,
    /// The anchor point in frame pixels (feet on the ground, core column), shared by all frames.
    pub pivot: [u32; 2],
    pub layout: SheetLayout,
    /// Grid columns and rows (a tight sheet: 0).
    pub grid: [u32; 2],
    pub padding: u32,
    pub extrude: u32,
}

impl Sheet {
    /// The pivot as a fraction of the frame (0,0 top left; 0.5,1 bottom centre).
    pub fn pivot_fraction(&self) -> [f64; 2] {
        [
            f64::from(self.pivot[0]) / f64::from(self.frame_size[0].max(1)),
            f64::from(self.pivot[1]) / f64::from(self.frame_size[1].max(1)),
        ]
    }

    /// Frame `i` as it was before packing (trimmed pixels put back at their offset).
    pub fn frame(&self, i: usize) -> Rgba {
        let [fw, fh] = self.frame_size;
        let mut out = Rgba {
            width: fw,
            height: fh,
            data: vec![0; (fw * fh * 4) as usize],
        };
        let p = self.placed[i];
        let [x, y, w, h] = p.rect;
        for row in 0..h {
            let src = (((y + row) * self.image.width + x) * 4) as usize;
            let dst = (((p.offset[1] + row) * fw + p.offset[0]) * 4) as usize;
            let n = (w * 4) as usize;
            out.data[dst..dst + n].copy_from_slice(&self.image.data[src..src + n]);
        }
        out
    }
}

/// How frames are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackOptions {
    pub layout: SheetLayout,
    pub columns: Option<u32>,
    pub padding: u32,
    pub extrude: u32,
    pub anchor: Anchor,
}

/// The box of pixels with alpha ≥ 128: `[x0, y0, x1, y1)`, `None` when there are none.
fn opaque_box(img: &Rgba) -> Option<[u32; 4]> {
    let (w, h) = (img.width, img.height);
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if img.data[((y * w + x) * 4 + 3) as usize] >= 128 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    (x1 > x0).then_some([x0, y0, x1, y1])
}

/// Where a frame's anchor lies in it, in pixels; `None` for a frame with nothing opaque.
pub fn anchor_point(img: &Rgba, anchor: Anchor) -> Option<[u32; 2]> {
    let [x0, y0, x1, y1] = opaque_box(img)?;
    match anchor {
        Anchor::None => None,
        Anchor::Bounds => Some([(x0 + x1) / 2, (y0 + y1) / 2]),
        Anchor::Feet => {
            // The upper half holds head and torso; legs swing below and move the box, so the
            // median opaque column up there is where the body is.
            let mid = y0 + (y1 - y0).div_ceil(2);
            let mut counts = vec![0u32; img.width as usize];
            let mut total = 0u32;
            for y in y0..mid {
                for x in x0..x1 {
                    if img.data[((y * img.width + x) * 4 + 3) as usize] >= 128 {
                        counts[x as usize] += 1;
                        total += 1;
                    }
                }
            }
            let mut seen = 0;
            let mut core = x0;
            for (x, c) in counts.iter().enumerate() {
                seen += c;
                if seen * 2 >= total {
                    core = x as u32;
                    break;
                }
            }
            Some([core, y1])
        }
    }
}

/// Shifts frames so their anchors coincide, on a canvas grown to hold every frame whole.
/// Returns the frames and the shared anchor (the pivot). Empty frames stay where they are.
pub fn anchor_frames(frames: &[Rgba], anchor: Anchor) -> (Vec<Rgba>, [u32; 2]) {
    let Some(first) = frames.first() else {
        return (Vec::new(), [0, 0]);
    };
    let (fw, fh) = (first.width, first.height);
    let bottom_centre = [fw / 2, fh];
    if anchor == Anchor::None {
        return (frames.to_vec(), bottom_centre);
    }
    let points: Vec<Option<[u32; 2]>> = frames.iter().map(|f| anchor_point(f, anchor)).collect();
    let Some(fallback) = points.iter().flatten().next().copied() else {
        return (frames.to_vec(), bottom_centre);
    };
    let pts: Vec<[u32; 2]> = points.iter().map(|p| p.unwrap_or(fallback)).collect();
    let left = pts.iter().map(|p| p[0]).max().unwrap_or(0);
    let up = pts.iter().map(|p| p[1]).max().unwrap_or(0);
    let right = pts.iter().map(|p| fw - p[0].min(fw)).max().unwrap_or(0);
    let down = pts.iter().map(|p| fh - p[1].min(fh)).max().unwrap_or(0);
    let (cw, ch) = (left + right, up + down);
    let out = frames
        .iter()
        .zip(&pts)
        .map(|(f, p)| {
            let (dx, dy) = (left - p[0], up - p[1]);
            let mut c = Rgba {
                width: cw,
                height: ch,
                data: vec![0; (cw * ch * 4) as usize],
            };
            for y in 0..fh {
                let src = (y * fw * 4) as usize;
                let dst = (((y + dy) * cw + dx) * 4) as usize;
                c.data[dst..dst + (fw * 4) as usize]
                    .copy_from_slice(&f.data[src..src + (fw * 4) as usize]);
            }
            c
        })
        .collect();
    (out, [left, up])
}

/// The box of pixels with any alpha (what a tight sheet keeps of a frame); a 1×1 box at the
/// origin for a frame with none, so every frame has a place.
pub(crate) fn content_box_of(img: &Rgba) -> [u32; 4] {
    let (w, h) = (img.width, img.height);
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if img.data[((y * w + x) * 4 + 3) as usize] > 0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 {
        [0, 0, 1, 1]
    } else {
        [x0, y0, x1 - x0, y1 - y0]
    }
}

/// The sheet's largest side; a sheet past it would not load as one texture in most engines.
pub const MAX_SHEET_SIDE: u32 = 16384;

/// Anchors and packs `frames` (all one size) with their durations and animations.
pub fn pack(
    frames: &[Rgba],
    durations_ms: &[u32],
    animations: Vec<Animation>,
    opts: &PackOptions,
) -> Result<Sheet, MediaError> {
    let first = frames
        .first()
        .ok_or_else(|| bad("a sheet needs at least one frame"))?;
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (first.width, first.height) {
            return Err(bad(format!(
                "frame {i} is {}×{} but frame 0 is {}×{}; every frame of a sheet must be the same \
                 size (resize or pad them first)",
                f.width, f.height, first.width, first.height
            )));
        }
    }
    if durations_ms.len() != frames.len() {
        return Err(bad(format!(
            "{} durations for {} frames",
            durations_ms.len(),
            frames.len()
        )));
    }
    for a in &animations {
        if a.from > a.to || a.to >= frames.len() {
            return Err(bad(format!(
                "animation {:?} spans frames {}..={} but the sheet has {} (0..={})",
                a.name,
                a.from,
                a.to,
                frames.len(),
                frames.len() - 1
            )));
        }
    }
    let (frames, pivot) = anchor_frames(frames, opts.anchor);
    let (fw, fh) = (frames[0].width, frames[0].height);
    let gap = opts.padding + 2 * opts.extrude;
    let n = frames.len() as u32;
    let (boxes, places, size, grid) = match opts.layout {
        SheetLayout::Grid => {
            let same_length = !animations.is_empty()
                && animations
                    .iter()
                    .all(|a| a.to - a.from == animations[0].to - animations[0].from);
            let columns = opts
                .columns
                .filter(|c| *c > 0)
                .unwrap_or(if same_length {
                    (animations[0].to - animations[0].from + 1) as u32
                } else {
                    (f64::from(n).sqrt().ceil() as u32).max(1)
                })
                .min(n);
            let rows = n.div_ceil(columns);
            let boxes: Vec<[u32; 4]> = frames.iter().map(|_| [0, 0, fw, fh]).collect();
            let places: Vec<[u32; 2]> = (0..n)
                .map(|i| {
                    [
                        opts.extrude + (i % columns) * (fw + gap),
                        opts.extrude + (i / columns) * (fh + gap),
                    ]
                })
                .collect();
            let size = [
                columns * (fw + gap) - opts.padding,
                rows * (fh + gap) - opts.padding,
            ];
            (boxes, places, size, [columns, rows])
        }
        SheetLayout::Tight => {
            let boxes: Vec<[u32; 4]> = frames.iter().map(content_box_of).collect();
            let (places, size) = shelf_pack(&boxes, gap, opts.extrude);
            (boxes, places, size, [0, 0])
        }
    };
    if size[0] > MAX_SHEET_SIDE || size[1] > MAX_SHEET_SIDE {
        return Err(bad(format!(
            "the sheet would be {}×{}, over {MAX_SHEET_SIDE} pixels a side; use fewer or smaller \
             frames, or a tight layout",
            size[0], size[1]
        )));
    }
    let mut image = Rgba {
        width: size[0],
        height: size[1],
        data: vec![0; (size[0] * size[1] * 4) as usize],
    };
    let mut placed = Vec::with_capacity(frames.len());
    for ((f, b), p) in frames.iter().zip(&boxes).zip(&places) {
        blit(&mut image, f, *b, *p, opts.extrude);
        placed.push(Placed {
            rect: [p[0], p[1], b[2], b[3]],
            offset: [b[0], b[1]],
        });
    }
    Ok(Sheet {
        image,
        frame_size: [fw, fh],
        placed,
        durations_ms: durations_ms.to_vec(),
        animations,
        pivot,
        layout: opts.layout,
        grid,
        padding: opts.padding,
        extrude: opts.extrude,
    })
}

/// Copies the `src_box` of `f` to `at` in `sheet`, then repeats its edge pixels `extrude` times
/// around it.
fn blit(sheet: &mut Rgba, f: &Rgba, src_box: [u32; 4], at: [u32; 2], extrude: u32) {
    let [bx, by, bw, bh] = src_box;
    let e = extrude as i64;
    for dy in -e..bh as i64 + e {
        for dx in -e..bw as i64 + e {
            let sx = bx as i64 + dx.clamp(0, bw as i64 - 1);
            let sy = by as i64 + dy.clamp(0, bh as i64 - 1);
            let tx = at[0] as i64 + dx;
            let ty = at[1] as i64 + dy;
            let s = ((sy as u32 * f.width + sx as u32) * 4) as usize;
            let t = ((ty as u32 * sheet.width + tx as u32) * 4) as usize;
            sheet.data[t..t + 4].copy_from_slice(&f.data[s..s + 4]);
        }
    }
}

/// Shelf packing, tallest first: rows of boxes no wider than about the square root of the total
/// area (never narrower than the widest box). Deterministic: ties keep frame order.
fn shelf_pack(boxes: &[[u32; 4]], gap: u32, extrude: u32) -> (Vec<[u32; 2]>, [u32; 2]) {
    let cell = |b: &[u32; 4]| (b[2] + gap, b[3] + gap);
    let area: u64 = boxes
        .iter()
        .map(|b| {
            let (w, h) = cell(b);
            u64::from(w) * u64::from(h)
        })
        .sum();
    let widest = boxes.iter().map(|b| cell(b).0).max().unwrap_or(1);
    let limit = ((area as f64).sqrt().ceil() as u32).max(widest);
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(boxes[i][3]));
    let mut places = vec![[0u32; 2]; boxes.len()];
    let (mut x, mut y, mut shelf_h, mut width) = (0u32, 0u32, 0u32, 0u32);
    for i in order {
        let (w, h) = cell(&boxes[i]);
        if x > 0 && x + w > limit {
            y += shelf_h;
            x = 0;
            shelf_h = 0;
        }
        places[i] = [x + extrude, y + extrude];
        x += w;
        width = width.max(x);
        shelf_h = shelf_h.max(h);
    }
    let pad = gap - 2 * extrude;
    (places, [width - pad, y + shelf_h - pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for the property tests.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u32) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % u64::from(n.max(1))) as u32
        }
    }

    fn blank(w: u32, h: u32) -> Rgba {
        Rgba {
            width: w,
            height: h,
            data: vec![0; (w * h * 4) as usize],
        }
    }

    fn fill(img: &mut Rgba, [x, y, w, h]: [u32; 4], c: [u8; 4]) {
        for yy in y..(y + h).min(img.height) {
            for xx in x..(x + w).min(img.width) {
                let i = ((yy * img.width + xx) * 4) as usize;
                img.data[i..i + 4].copy_from_slice(&c);
            }
        }
    }

    fn random_frames(rng: &mut Lcg, n: usize, w: u32, h: u32) -> Vec<Rgba> {
        (0..n)
            .map(|k| {
                let mut f = blank(w, h);
                for _ in 0..1 + rng.next(3) {
                    let (x, y) = (rng.next(w), rng.next(h));
                    let (bw, bh) = (1 + rng.next(w - x), 1 + rng.next(h - y));
                    fill(
                        &mut f,
                        [x, y, bw, bh],
                        [k as u8, rng.next(256) as u8, 9, 255],
                    );
                }
                // Now and then a frame with nothing in it.
                if rng.next(7) == 0 {
                    f = blank(w, h);
                }
                f
            })
            .collect()
    }

    fn overlaps(a: [u32; 4], b: [u32; 4], margin: u32) -> bool {
        let grow = |r: [u32; 4]| {
            [
                r[0].saturating_sub(margin),
                r[1].saturating_sub(margin),
                r[0] + r[2] + margin,
                r[1] + r[3] + margin,
            ]
        };
        let (a, b) = (grow(a), [b[0], b[1], b[0] + b[2], b[1] + b[3]]);
        a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
    }

    #[test]
    fn packing_never_overlaps_frames_and_gives_every_frame_back_whole() {
        let mut rng = Lcg(7);
        for case in 0..60 {
            let (w, h) = (1 + rng.next(40), 1 + rng.next(40));
            let n = 1 + rng.next(30) as usize;
            let frames = random_frames(&mut rng, n, w, h);
            let layout = if case % 2 == 0 {
                SheetLayout::Tight
            } else {
                SheetLayout::Grid
            };
            let opts = PackOptions {
                layout,
                columns: None,
                padding: rng.next(3),
                extrude: rng.next(3),
                anchor: Anchor::None,
            };
            let sheet = pack(&frames, &vec![100; n], Vec::new(), &opts).expect("pack");
            assert_eq!(sheet.placed.len(), n);
            for (i, p) in sheet.placed.iter().enumerate() {
                let r = p.rect;
                // Inside the sheet, extrusion included.
                assert!(r[0] >= opts.extrude && r[1] >= opts.extrude, "case {case}");
                assert!(
                    r[0] + r[2] + opts.extrude <= sheet.image.width,
                    "case {case}"
                );
                assert!(
                    r[1] + r[3] + opts.extrude <= sheet.image.height,
                    "case {case}"
                );
                for (j, q) in sheet.placed.iter().enumerate().skip(i + 1) {
                    // Frame and extrusion of one never reach the other's pixels.
                    assert!(
                        !overlaps(r, q.rect, opts.extrude),
                        "case {case}: frames {i} and {j} overlap ({r:?}, {:?})",
                        q.rect
                    );
                }
                assert_eq!(sheet.frame(i), frames[i], "case {case}: frame {i}");
            }
        }
    }

    #[test]
    fn a_grid_puts_one_animation_a_row() {
        let mut rng = Lcg(3);
        let frames = random_frames(&mut rng, 16, 8, 8);
        let anims = ["down", "left", "right", "up"]
            .iter()
            .enumerate()
            .map(|(i, n)| Animation {
                name: (*n).into(),
                from: i * 4,
                to: i * 4 + 3,
                direction: PlayDirection::Forward,
                looped: true,
            })
            .collect();
        let opts = PackOptions {
            layout: SheetLayout::Grid,
            columns: None,
            padding: 0,
            extrude: 0,
            anchor: Anchor::None,
        };
        let sheet = pack(&frames, &[100; 16], anims, &opts).expect("pack");
        assert_eq!(sheet.grid, [4, 4]);
        assert_eq!([sheet.image.width, sheet.image.height], [32, 32]);
        assert_eq!(sheet.placed[5].rect, [8, 8, 8, 8]);
    }

    #[test]
    fn frames_of_different_sizes_and_tags_past_the_end_are_refused() {
        let frames = vec![blank(8, 8), blank(8, 9)];
        let opts = PackOptions {
            layout: SheetLayout::Grid,
            columns: None,
            padding: 0,
            extrude: 0,
            anchor: Anchor::Feet,
        };
        let e = pack(&frames, &[1, 1], Vec::new(), &opts)
            .expect_err("sizes")
            .to_string();
        assert!(e.contains("frame 1 is 8×9 but frame 0 is 8×8"), "{e}");
        let frames = vec![blank(8, 8), blank(8, 8)];
        let anim = Animation {
            name: "walk".into(),
            from: 0,
            to: 2,
            direction: PlayDirection::Forward,
            looped: true,
        };
        let e = pack(&frames, &[1, 1], vec![anim], &opts)
            .expect_err("tag")
            .to_string();
        assert!(e.contains("\"walk\" spans frames 0..=2"), "{e}");
    }

    /// A walk cycle as a generator draws one: the body wanders a pixel or two each frame (and
    /// bobs), the legs swing so the opaque box changes width and centre from frame to frame.
    fn walk_cycle(rng: &mut Lcg) -> (Vec<Rgba>, Vec<[u32; 2]>) {
        let mut frames = Vec::new();
        let mut torso = Vec::new();
        for k in 0..8u32 {
            let mut f = blank(48, 48);
            let (bx, by) = (18 + rng.next(5), 6 + rng.next(3));
            fill(&mut f, [bx + 2, by, 6, 6], [240, 200, 160, 255]); // head
            fill(&mut f, [bx, by + 6, 10, 12], [40, 80, 200, 255]); // torso
            // Legs: the stride swings from −6 to +6 pixels and back.
            let stride = [0i32, 3, 6, 3, 0, -3, -6, -3][k as usize];
            let hip = by + 18;
            for t in 0..14u32 {
                let lx = bx as i32 + 2 + stride * t as i32 / 14;
                let rx = bx as i32 + 6 - stride * t as i32 / 14;
                fill(&mut f, [lx as u32, hip + t, 2, 1], [30, 30, 30, 255]);
                fill(&mut f, [rx as u32, hip + t, 2, 1], [30, 30, 30, 255]);
            }
            // One arm forward with the opposite leg.
            let ax = (bx as i32 + 10 + stride.max(0) / 2) as u32;
            fill(&mut f, [ax, by + 8, 2, 6], [240, 200, 160, 255]);
            frames.push(f);
            torso.push([bx, by + 6]);
        }
        (frames, torso)
    }

    /// The torso's top-left pixel in an anchored frame (the first torso-blue pixel).
    fn torso_at(f: &Rgba) -> [u32; 2] {
        for y in 0..f.height {
            for x in 0..f.width {
                let i = ((y * f.width + x) * 4) as usize;
                if f.data[i..i + 4] == [40, 80, 200, 255] {
                    return [x, y];
                }
            }
        }
        panic!("no torso");
    }

    #[test]
    fn anchored_frames_of_a_walk_cycle_drift_by_at_most_one_pixel() {
        let mut rng = Lcg(11);
        let (frames, _) = walk_cycle(&mut rng);
        let (anchored, pivot) = anchor_frames(&frames, Anchor::Feet);
        let at: Vec<[u32; 2]> = anchored.iter().map(torso_at).collect();
        let xs: Vec<u32> = at.iter().map(|p| p[0]).collect();
        let drift = xs.iter().max().expect("x") - xs.iter().min().expect("x");
        assert!(drift <= 1, "the torso drifts {drift} px across {xs:?}");
        // Feet on one ground line: the lowest opaque row is the pivot's row in every frame.
        for f in &anchored {
            assert_eq!(opaque_box(f).expect("opaque")[3], pivot[1]);
        }
        // The bounding box is what jitters: centring on it moves the torso more than that.
        let (boxed, _) = anchor_frames(&frames, Anchor::Bounds);
        let bx: Vec<u32> = boxed.iter().map(|f| torso_at(f)[0]).collect();
        let box_drift = bx.iter().max().expect("x") - bx.iter().min().expect("x");
        assert!(
            box_drift > 1,
            "the bounding-box anchor drifted only {box_drift}"
        );
    }
}
