//! Frame work for cinematics, on straight-alpha RGBA: a camera move over a still (zoom, pan,
//! rotate, sampled bilinearly), transitions between two shots, colour held to a reference (so
//! a repainted chain does not drift), and subtitles drawn with a compiled-in font.

use mintframe_types::Transition;

use crate::still::Rgba;

/// Where the camera looks: `zoom` times closer than the frame as drawn, its centre moved by
/// `pan` (fractions of the frame) and turned `rotate` degrees clockwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub zoom: f32,
    pub pan: [f32; 2],
    pub rotate: f32,
}

impl View {
    pub const IDENTITY: View = View {
        zoom: 1.0,
        pan: [0.0, 0.0],
        rotate: 0.0,
    };

    /// The view `t` of the way (0–1, already eased) from the identity to `end`.
    pub fn towards(end: View, t: f32) -> View {
        View {
            zoom: 1.0 + (end.zoom - 1.0) * t,
            pan: [end.pan[0] * t, end.pan[1] * t],
            rotate: end.rotate * t,
        }
    }
}

fn sample(src: &Rgba, x: f32, y: f32) -> [f32; 4] {
    // Outside the picture the edge repeats: a zoom out or a pan past the edge smears it
    // rather than showing a hole.
    let (w, h) = (src.width as i64, src.height as i64);
    let fx = (x - 0.5).clamp(0.0, (w - 1) as f32);
    let fy = (y - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx.floor() as i64, fy.floor() as i64);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let px = |x: i64, y: i64| {
        let i = ((y * w + x) * 4) as usize;
        [
            f32::from(src.data[i]),
            f32::from(src.data[i + 1]),
            f32::from(src.data[i + 2]),
            f32::from(src.data[i + 3]),
        ]
    };
    let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
    let mut out = [0f32; 4];
    for k in 0..4 {
        let top = a[k] + (b[k] - a[k]) * ax;
        let bottom = c[k] + (d[k] - c[k]) * ax;
        out[k] = top + (bottom - top) * ay;
    }
    out
}

/// `src` as the camera at `view` sees it, the same size.
pub fn camera(src: &Rgba, view: View) -> Rgba {
    let (w, h) = (src.width as f32, src.height as f32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (sin, cos) = view.rotate.to_radians().sin_cos();
    let zoom = view.zoom.max(1e-3);
    let mut data = Vec::with_capacity(src.data.len());
    for y in 0..src.height {
        for x in 0..src.width {
            // From the output pixel's centre back into the source: undo the turn, the zoom,
            // then move by the pan.
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let (rx, ry) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            let sx = rx / zoom + cx + view.pan[0] * w;
            let sy = ry / zoom + cy + view.pan[1] * h;
            let p = sample(src, sx, sy);
            data.extend(p.map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    Rgba {
        width: src.width,
        height: src.height,
        data,
    }
}

/// The frame `t` of the way (0–1) through `kind` from `from` to `to` (same sizes).
pub fn transition(from: &Rgba, to: &Rgba, kind: Transition, t: f32) -> Rgba {
    let t = t.clamp(0.0, 1.0);
    let w = from.width as usize;
    let mix = |a: u8, b: u8, k: f32| (f32::from(a) * (1.0 - k) + f32::from(b) * k).round() as u8;
    let mut data = Vec::with_capacity(from.data.len());
    for (i, (a, b)) in from
        .data
        .chunks_exact(4)
        .zip(to.data.chunks_exact(4))
        .enumerate()
    {
        let x = (i % w) as f32 + 0.5;
        let px: [u8; 4] = match kind {
            Transition::Cut => {
                if t < 1.0 {
                    [a[0], a[1], a[2], a[3]]
                } else {
                    [b[0], b[1], b[2], b[3]]
                }
            }
            Transition::Dissolve => [
                mix(a[0], b[0], t),
                mix(a[1], b[1], t),
                mix(a[2], b[2], t),
                mix(a[3], b[3], t),
            ],
            Transition::Fade => {
                // Down to black over the first half, up from it over the second.
                let (p, k) = if t < 0.5 {
                    (a, 1.0 - 2.0 * t)
                } else {
                    (b, 2.0 * t - 1.0)
                };
                let s = |c: u8| (f32::from(c) * k).round() as u8;
                [s(p[0]), s(p[1]), s(p[2]), p[3]]
            }
            Transition::WipeLeft | Transition::WipeRight => {
                let edge = t * w as f32;
                let shown = if kind == Transition::WipeRight {
                    x < edge
                } else {
                    x > w as f32 - edge
                };
                if shown {
                    [b[0], b[1], b[2], b[3]]
                } else {
                    [a[0], a[1], a[2], a[3]]
                }
            }
        };
        data.extend(px);
    }
    Rgba {
        width: from.width,
        height: from.height,
        data,
    }
}

/// `frame` with each colour channel's mean and spread moved to `reference`'s (opaque pixels
/// only): a repainted chain keeps the first frame's colours instead of drifting.
pub fn match_colours(frame: &Rgba, reference: &Rgba) -> Rgba {
    let stats = |img: &Rgba| {
        let mut sum = [0f64; 3];
        let mut sq = [0f64; 3];
        let mut n = 0f64;
        for p in img.data.chunks_exact(4).filter(|p| p[3] > 0) {
            for c in 0..3 {
                let v = f64::from(p[c]);
                sum[c] += v;
                sq[c] += v * v;
            }
            n += 1.0;
        }
        let n = n.max(1.0);
        let mean = sum.map(|s| s / n);
        let sd = [0, 1, 2].map(|c| (sq[c] / n - mean[c] * mean[c]).max(0.0).sqrt());
        (mean, sd)
    };
    let (m, s) = stats(frame);
    let (rm, rs) = stats(reference);
    let mut out = frame.clone();
    for p in out.data.chunks_exact_mut(4) {
        for c in 0..3 {
            let scale = if s[c] > 1e-6 { rs[c] / s[c] } else { 1.0 };
            let v = (f64::from(p[c]) - m[c]) * scale + rm[c];
            p[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// A subtitle renderer: the compiled-in Ubuntu Light face (Ubuntu Font Licence), white text
/// on a dark band at the bottom of the frame, wrapped to the frame's width.
pub struct Subtitles {
    font: fontdue::Font,
}

impl std::fmt::Debug for Subtitles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subtitles").finish_non_exhaustive()
    }
}

impl Subtitles {
    pub fn new() -> Result<Subtitles, crate::MediaError> {
        let font = fontdue::Font::from_bytes(
            epaint_default_fonts::UBUNTU_LIGHT,
            fontdue::FontSettings::default(),
        )
        .map_err(|e| crate::MediaError::Image {
            path: "Ubuntu-Light.ttf".into(),
            reason: format!("the compiled-in subtitle font does not load: {e}"),
        })?;
        Ok(Subtitles { font })
    }

    fn width_of(&self, text: &str, px: f32) -> f32 {
        text.chars()
            .map(|c| self.font.metrics(c, px).advance_width)
            .sum()
    }

    /// `text` broken into lines no wider than `max` pixels (a word longer than that stands
    /// alone on its line).
    fn wrap(&self, text: &str, px: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.width_of(&candidate, px) > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line = word.to_owned();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// Draws `text` into `frame`: a size that reads at the frame's height (a 16th of it, at
    /// least 8 px), centred near the bottom on a dark band.
    pub fn draw(&self, frame: &mut Rgba, text: &str) {
        let px = (frame.height as f32 / 16.0).max(8.0);
        let margin = (frame.width as f32 * 0.05).max(2.0);
        let lines = self.wrap(text, px, frame.width as f32 - 2.0 * margin);
        if lines.is_empty() {
            return;
        }
        let line_h = (px * 1.25).ceil();
        let pad = (px * 0.3).ceil();
        let block = line_h * lines.len() as f32;
        let bottom = frame.height as f32 - (frame.height as f32 * 0.04).max(2.0);
        let top = (bottom - block - 2.0 * pad).max(0.0);
        let widest = lines
            .iter()
            .map(|l| self.width_of(l, px))
            .fold(0f32, f32::max);
        let band_l = ((frame.width as f32 - widest) / 2.0 - pad).max(0.0);
        let band_r = ((frame.width as f32 + widest) / 2.0 + pad).min(frame.width as f32);
        let w = frame.width as usize;
        // The band: black at 60 %, under the text.
        for y in top as usize..(bottom as usize).min(frame.height as usize) {
            for x in band_l as usize..band_r as usize {
                let p = &mut frame.data[(y * w + x) * 4..][..4];
                for c in p.iter_mut().take(3) {
                    *c = (f32::from(*c) * 0.4).round() as u8;
                }
                p[3] = p[3].max(200);
            }
        }
        let ascent = self
            .font
            .horizontal_line_metrics(px)
            .map(|m| m.ascent)
            .unwrap_or(px * 0.8);
        for (k, line) in lines.iter().enumerate() {
            let mut pen = (frame.width as f32 - self.width_of(line, px)) / 2.0;
            let baseline = top + pad + k as f32 * line_h + ascent;
            for ch in line.chars() {
                let (m, coverage) = self.font.rasterize(ch, px);
                let gx = (pen + m.xmin as f32).round() as i64;
                let gy = (baseline - m.height as f32 - m.ymin as f32).round() as i64;
                for row in 0..m.height {
                    for col in 0..m.width {
                        let a = f32::from(coverage[row * m.width + col]) / 255.0;
                        let (x, y) = (gx + col as i64, gy + row as i64);
                        if a <= 0.0
                            || x < 0
                            || y < 0
                            || x >= i64::from(frame.width)
                            || y >= i64::from(frame.height)
                        {
                            continue;
                        }
                        let p = &mut frame.data[(y as usize * w + x as usize) * 4..][..4];
                        for c in p.iter_mut().take(3) {
                            *c = (f32::from(*c) * (1.0 - a) + 255.0 * a).round() as u8;
                        }
                        p[3] = p[3].max((a * 255.0) as u8);
                    }
                }
                pen += m.advance_width;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Rgba {
        Rgba {
            width: w,
            height: h,
            data: (0..w * h)
                .flat_map(|i| {
                    [
                        (i % w * 255 / (w - 1)) as u8,
                        (i / w * 255 / (h - 1)) as u8,
                        60,
                        255,
                    ]
                })
                .collect(),
        }
    }

    #[test]
    fn the_identity_view_changes_nothing_and_a_pan_moves_pixels_by_the_fraction() {
        let g = gradient(40, 20);
        assert_eq!(camera(&g, View::IDENTITY), g);
        // Panning a quarter right shows what was 10 px to the right.
        let moved = camera(
            &g,
            View {
                pan: [0.25, 0.0],
                ..View::IDENTITY
            },
        );
        for x in 0..30usize {
            assert_eq!(moved.data[x * 4], g.data[(x + 10) * 4], "x {x}");
        }
        // Twice as close: the centre stays, the corner comes from a quarter in.
        let z = camera(
            &g,
            View {
                zoom: 2.0,
                ..View::IDENTITY
            },
        );
        let at = |img: &Rgba, x: usize, y: usize| img.data[(y * 40 + x) * 4];
        assert!((i32::from(at(&z, 20, 10)) - i32::from(at(&g, 20, 10))).abs() <= 4);
        assert!((i32::from(at(&z, 0, 0)) - i32::from(at(&g, 10, 5))).abs() <= 4);
        // A half turn puts the left edge on the right.
        let r = camera(
            &g,
            View {
                rotate: 180.0,
                ..View::IDENTITY
            },
        );
        assert!((i32::from(at(&r, 39, 10)) - i32::from(at(&g, 0, 9))).abs() <= 2);
        let half = View::towards(
            View {
                zoom: 3.0,
                pan: [0.2, -0.4],
                rotate: 90.0,
            },
            0.5,
        );
        assert_eq!(
            half,
            View {
                zoom: 2.0,
                pan: [0.1, -0.2],
                rotate: 45.0
            }
        );
    }

    #[test]
    fn transitions_start_on_the_first_shot_end_on_the_second_and_pass_as_each_should() {
        let solid = |v: u8| Rgba {
            width: 10,
            height: 2,
            data: [v, v, v, 255].repeat(20),
        };
        let (a, b) = (solid(200), solid(100));
        for kind in Transition::ALL.iter().copied() {
            assert_eq!(transition(&a, &b, kind, 0.0).data[..3], [200; 3], "{kind}");
            assert_eq!(transition(&a, &b, kind, 1.0).data[..3], [100; 3], "{kind}");
        }
        assert_eq!(transition(&a, &b, Transition::Dissolve, 0.5).data[0], 150);
        assert_eq!(
            transition(&a, &b, Transition::Fade, 0.5).data[0],
            0,
            "black between"
        );
        let w = transition(&a, &b, Transition::WipeRight, 0.3);
        assert_eq!((w.data[0], w.data[4 * 2], w.data[4 * 3]), (100, 100, 200));
        let w = transition(&a, &b, Transition::WipeLeft, 0.3);
        assert_eq!(
            (w.data[4 * 9], w.data[4 * 7], w.data[4 * 6]),
            (100, 100, 200)
        );
    }

    #[test]
    fn colours_move_to_the_references_and_subtitles_are_drawn_inside_the_frame() {
        let g = gradient(32, 16);
        let mut dim = g.clone();
        for p in dim.data.chunks_exact_mut(4) {
            p[0] /= 2;
        }
        let back = match_colours(&dim, &g);
        let mean = |img: &Rgba| {
            img.data
                .chunks_exact(4)
                .map(|p| f64::from(p[0]))
                .sum::<f64>()
                / 512.0
        };
        assert!(
            (mean(&back) - mean(&g)).abs() < 1.0,
            "{} {}",
            mean(&back),
            mean(&g)
        );

        let subs = Subtitles::new().expect("font");
        let black = Rgba {
            width: 128,
            height: 72,
            data: [0, 0, 0, 255].repeat(128 * 72),
        };
        let mut f = black.clone();
        subs.draw(&mut f, "Mornin'. Need a blade sharpened, traveller?");
        let lit: Vec<(usize, usize)> = f
            .data
            .chunks_exact(4)
            .enumerate()
            .filter(|(_, p)| p[0] > 128)
            .map(|(i, _)| (i % 128, i / 128))
            .collect();
        assert!(lit.len() > 100, "{} text pixels", lit.len());
        assert!(
            lit.iter().all(|(_, y)| *y > 36),
            "the text sits in the lower half"
        );
        let (min_x, max_x) = lit
            .iter()
            .fold((usize::MAX, 0), |(a, b), (x, _)| (a.min(*x), b.max(*x)));
        assert!(
            min_x > 2 && max_x < 125,
            "inside the frame: {min_x}..{max_x}"
        );
        // Two lines: the text wraps rather than running off the edge.
        let rows: std::collections::BTreeSet<usize> = lit.iter().map(|(_, y)| *y).collect();
        assert!(rows.iter().max().expect("rows") - rows.iter().min().expect("rows") > 8);
        let mut empty = black.clone();
        subs.draw(&mut empty, "   ");
        assert_eq!(empty, black);
    }
}
