//! Says what item a 32×32-ish sprite shows and what colour it is, from its pixels alone: the
//! judge of the offline model's prompt following. Written apart from the Python that draws the
//! training sprites (`scripts/offline-model/sprites.py`), sharing no code with it: it knows items
//! only as a player would describe their outlines (a potion is a tall bottle with a narrow neck,
//! a slime a low dome, a key has a ring…), measured on the silhouette.

/// The item kinds the checker tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Potion,
    Sword,
    Shield,
    Gem,
    Coin,
    Key,
    Chest,
    Heart,
    Mushroom,
    Slime,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Potion,
        Kind::Sword,
        Kind::Shield,
        Kind::Gem,
        Kind::Coin,
        Kind::Key,
        Kind::Chest,
        Kind::Heart,
        Kind::Mushroom,
        Kind::Slime,
    ];
}

/// An RGB image, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    pub rgb: &'a [u8],
}

impl Image<'_> {
    fn px(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.width + x) * 3;
        [
            f32::from(self.rgb[i]),
            f32::from(self.rgb[i + 1]),
            f32::from(self.rgb[i + 2]),
        ]
    }
}

/// Pixels that differ from the background, the background being the median colour of the
/// border. How much they must differ grows with how much the border itself varies (up to Otsu's
/// threshold), so a mottled background is not taken for the item; specks of fewer than 4
/// pixels, and parts touching the image's edge while others do not, are dropped (an item sits
/// inside its frame).
pub fn foreground(img: &Image) -> Vec<bool> {
    let (w, h) = (img.width, img.height);
    let on_edge = |i: usize| {
        let (x, y) = (i % w, i / w);
        x == 0 || y == 0 || x + 1 == w || y + 1 == h
    };
    let edge_px: Vec<usize> = (0..w * h).filter(|&i| on_edge(i)).collect();
    let mut border = [Vec::new(), Vec::new(), Vec::new()];
    for &i in &edge_px {
        let p = img.px(i % w, i / w);
        for c in 0..3 {
            border[c].push(p[c]);
        }
    }
    let bg: Vec<f32> = border
        .iter_mut()
        .map(|v| {
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    let dist: Vec<u8> = (0..w * h)
        .map(|i| {
            let p = img.px(i % w, i / w);
            (0..3).map(|c| (p[c] - bg[c]).abs()).fold(0.0, f32::max) as u8
        })
        .collect();
    // Above the background's own spread (its 90th percentile along the border), and at least 32.
    let mut along: Vec<u8> = edge_px.iter().map(|&i| dist[i]).collect();
    along.sort_unstable();
    let spread = f32::from(along[along.len() * 9 / 10]) * 1.25 + 8.0;
    // …but no higher than Otsu's split of all the distances, where the border holds a shadow
    // or some other part of the drawing.
    let threshold = spread.min(f32::from(otsu(&dist))).max(32.0);
    let raw: Vec<bool> = dist.iter().map(|&d| f32::from(d) > threshold).collect();
    // An opening with a 3×3 square (erode, then dilate) wipes out texture thinner than 3
    // pixels and keeps every part of an item that is at least that thick.
    let at = |m: &[bool], x: isize, y: isize| {
        x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h && m[y as usize * w + x as usize]
    };
    let around = |m: &[bool], i: usize, all: bool| {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        let mut hits = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)));
        if all {
            hits.all(|(dx, dy)| at(m, x + dx, y + dy))
        } else {
            hits.any(|(dx, dy)| at(m, x + dx, y + dy))
        }
    };
    let eroded: Vec<bool> = (0..w * h).map(|i| around(&raw, i, true)).collect();
    let mut mask: Vec<bool> = (0..w * h)
        .map(|i| raw[i] && around(&eroded, i, false))
        .collect();
    let comps = components(&mask, w, h, true);
    let edge = |c: &Vec<usize>| c.iter().any(|&i| on_edge(i));
    // Streaks one or two pixels thin are texture, not parts of an item.
    let streak = |c: &Vec<usize>| {
        let (xs, ys): (Vec<usize>, Vec<usize>) = c.iter().map(|&i| (i % w, i / w)).unzip();
        let side = |v: &[usize]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0) + 1;
        c.len() < 12 && side(&xs).min(side(&ys)) <= 2
    };
    let inner = comps.iter().any(|c| c.len() >= 4 && !edge(c));
    for comp in comps {
        if comp.len() < 4 || streak(&comp) || (inner && edge(&comp)) {
            for i in comp {
                mask[i] = false;
            }
        }
    }
    mask
}

/// The threshold that best splits `values` into two classes (Otsu, 1979).
fn otsu(values: &[u8]) -> u8 {
    let mut hist = [0f64; 256];
    for &v in values {
        hist[usize::from(v)] += 1.0;
    }
    let total = values.len() as f64;
    let sum: f64 = hist.iter().enumerate().map(|(i, n)| i as f64 * n).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0u8);
    for (t, n) in hist.iter().enumerate() {
        w0 += n;
        sum0 += t as f64 * n;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

/// 4-connected components of the pixels equal to `value`.
fn components(mask: &[bool], w: usize, h: usize, value: bool) -> Vec<Vec<usize>> {
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    for start in 0..mask.len() {
        if seen[start] || mask[start] != value {
            continue;
        }
        let mut comp = vec![start];
        seen[start] = true;
        let mut k = 0;
        while k < comp.len() {
            let i = comp[k];
            k += 1;
            let (x, y) = (i % w, i / w);
            let mut near = Vec::with_capacity(4);
            if x > 0 {
                near.push(i - 1);
            }
            if x + 1 < w {
                near.push(i + 1);
            }
            if y > 0 {
                near.push(i - w);
            }
            if y + 1 < h {
                near.push(i + w);
            }
            for j in near {
                if !seen[j] && mask[j] == value {
                    seen[j] = true;
                    comp.push(j);
                }
            }
        }
        out.push(comp);
    }
    out
}

/// The hue (degrees) most of the item's saturated pixels share, if it has colour at all.
pub fn dominant_hue(img: &Image, mask: &[bool]) -> Option<f32> {
    let mut bins = [0.0f32; 36];
    let mut hues = Vec::new();
    for (i, &m) in mask.iter().enumerate() {
        if !m {
            continue;
        }
        let [r, g, b] = img.px(i % img.width, i / img.width);
        let (h, s, v) = hsv(r / 255.0, g / 255.0, b / 255.0);
        if s >= 0.35 && v >= 0.25 {
            bins[((h / 10.0) as usize) % 36] += 1.0;
            hues.push(h);
        }
    }
    if hues.len() < 8 {
        return None;
    }
    // The 30° window holding the most pixels, then their circular mean.
    let best = (0..36)
        .max_by(|&a, &b| {
            let s = |k: usize| bins[(k + 35) % 36] + bins[k] + bins[(k + 1) % 36];
            s(a).total_cmp(&s(b))
        })
        .unwrap_or(0);
    let centre = best as f32 * 10.0 + 5.0;
    let (mut sx, mut sy) = (0.0f32, 0.0f32);
    for h in hues {
        let d = (h - centre + 540.0) % 360.0 - 180.0;
        if d.abs() <= 20.0 {
            sx += h.to_radians().cos();
            sy += h.to_radians().sin();
        }
    }
    Some((sy.atan2(sx).to_degrees() + 360.0) % 360.0)
}

fn hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * (((g - b) / d).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    let s = if max == 0.0 { 0.0 } else { d / max };
    (h, s, max)
}

/// Colour names by hue, as the prompts use them.
pub fn hue_name(h: f32) -> &'static str {
    match h {
        h if !(15.0..345.0).contains(&h) => "red",
        h if h < 45.0 => "orange",
        h if h < 70.0 => "yellow",
        h if h < 160.0 => "green",
        h if h < 195.0 => "teal",
        h if h < 255.0 => "blue",
        h if h < 300.0 => "purple",
        _ => "pink",
    }
}

/// What the silhouette measures.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Height over width of the bounding box.
    pub aspect: f32,
    /// The share of the bounding box the item covers.
    pub fill: f32,
    /// Mean row width over the top and bottom 30 % of rows, as shares of the widest row.
    pub top: f32,
    pub bottom: f32,
    /// Where the widest rows are, 0 at the top, 1 at the bottom.
    pub peak: f32,
    /// Enclosed background regions (a key's ring) of at least 2 pixels.
    pub holes: usize,
    /// Items drawn along a diagonal: the share of pixels near one of the bounding box's diagonals.
    pub diagonal: f32,
}

/// None when nothing stands out from the background.
pub fn shape(mask: &[bool], w: usize, h: usize) -> Option<Shape> {
    // Every part that stands out: a bottle's glass can vanish into a white background and leave
    // its cork and its liquid apart.
    let item: Vec<usize> = (0..w * h).filter(|&i| mask[i]).collect();
    if item.len() < 12 {
        return None;
    }
    let mut m = vec![false; w * h];
    for &i in &item {
        m[i] = true;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for &i in &item {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let widths: Vec<f32> = (y0..=y1)
        .map(|y| (x0..=x1).filter(|&x| m[y * w + x]).count() as f32)
        .collect();
    let maxw = widths.iter().copied().fold(0.0, f32::max);
    let band = ((bh as f32 * 0.3).round() as usize).max(1);
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    let top = mean(&widths[..band]) / maxw;
    let bottom = mean(&widths[bh - band..]) / maxw;
    // Centre of the rows at least 90 % as wide as the widest.
    let wide: Vec<usize> = (0..bh).filter(|&r| widths[r] >= 0.9 * maxw).collect();
    let peak = (mean(&wide.iter().map(|&r| r as f32).collect::<Vec<_>>()) + 0.5) / bh as f32;
    let holes = components(&m, w, h, false)
        .into_iter()
        .filter(|c| {
            c.len() >= 2
                && c.iter().all(|&i| {
                    let (x, y) = (i % w, i / w);
                    x > 0 && y > 0 && x + 1 < w && y + 1 < h
                })
        })
        .count();
    // Pixels within the band around one diagonal of the bounding box, in box units.
    let band = |off: fn(f32, f32) -> f32| {
        item.iter()
            .filter(|&&i| {
                let u = ((i % w) - x0) as f32 / bw as f32;
                let v = ((i / w) - y0) as f32 / bh as f32;
                off(u, v).abs() < 0.2
            })
            .count()
    };
    let near_diag = band(|u, v| u + v - 1.0).max(band(|u, v| u - v));
    Some(Shape {
        aspect: bh as f32 / bw as f32,
        fill: item.len() as f32 / (bw * bh) as f32,
        top,
        bottom,
        peak,
        holes,
        diagonal: near_diag as f32 / item.len() as f32,
    })
}

/// The item kind the silhouette shows.
pub fn classify(s: &Shape) -> Kind {
    // Long thin items along a diagonal: a key has its ring, a sword none.
    if s.fill < 0.45 && s.diagonal > 0.6 {
        return if s.holes > 0 { Kind::Key } else { Kind::Sword };
    }
    // A bottle: taller than wide, a narrow neck above a wider body.
    if s.aspect >= 1.15 && s.top < 0.6 && s.peak > 0.5 {
        return Kind::Potion;
    }
    // Wider at the top than at the bottom.
    if s.top > s.bottom + 0.25 {
        if s.bottom < 0.45 && s.peak < 0.45 && s.fill < 0.6 && s.aspect < 0.95 {
            return Kind::Mushroom;
        }
        if s.peak < 0.3 && s.aspect >= 0.95 {
            return Kind::Shield;
        }
        if s.peak >= 0.25 && s.top > 0.75 && s.aspect < 1.0 {
            return Kind::Heart;
        }
        return Kind::Gem;
    }
    // Low and wide, flat at the bottom.
    if s.aspect < 0.9 && s.bottom > s.top + 0.1 {
        return if s.fill > 0.8 {
            Kind::Chest
        } else {
            Kind::Slime
        };
    }
    if s.fill > 0.85 && s.aspect < 0.95 {
        return Kind::Chest;
    }
    Kind::Coin
}

/// An 8-bit PNG as RGB (alpha, if any, composited over white).
pub fn read_rgb(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let file = std::fs::File::open(path).expect("png");
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size().expect("size")];
    let info = r.next_frame(&mut buf).expect("png frame");
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| {
                let a = u32::from(p[3]);
                [0, 1, 2].map(|c| ((u32::from(p[c]) * a + 255 * (255 - a)) / 255) as u8)
            })
            .collect(),
        other => panic!("{}: {other:?} PNGs are not sprites", path.display()),
    };
    (info.width as usize, info.height as usize, rgb)
}

/// Kind and hue of one sprite; None when nothing stands out from the background.
pub fn check(img: &Image) -> Option<(Kind, Option<f32>)> {
    let mask = foreground(img);
    let s = shape(&mask, img.width, img.height)?;
    if std::env::var_os("CHECKER_DEBUG").is_some() {
        let rows: Vec<String> = mask
            .chunks(img.width)
            .map(|r| r.iter().map(|&m| if m { '#' } else { '.' }).collect())
            .collect();
        eprintln!("{:?} {s:?}\n{}", classify(&s), rows.join("\n"));
    }
    Some((classify(&s), dominant_hue(img, &mask)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The procedural contact sheet (`scripts/offline-model/sprites.py sheet … 4 1`): a row per
    /// kind in `Kind::ALL`'s order, four sprites of each of ten colours (red first, blue sixth)
    /// per row, drawn from seeds the model never trained on.
    fn sheet() -> (usize, usize, Vec<u8>) {
        read_rgb(&crate::workspace_root().join("tests/fixtures/offline-model/procedural.png"))
    }

    fn cell(w: usize, rgb: &[u8], row: usize, col: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 * 32 * 3);
        for y in 0..32 {
            let start = ((row * 32 + y) * w + col * 32) * 3;
            out.extend_from_slice(&rgb[start..start + 32 * 3]);
        }
        out
    }

    #[test]
    fn the_checker_tells_the_procedural_items_apart_and_names_their_colours() {
        let (w, h, rgb) = sheet();
        assert_eq!((w, h), (40 * 32, 10 * 32));
        let mut confusion: BTreeMap<(Kind, Kind), usize> = BTreeMap::new();
        let mut hue_ok = 0;
        let mut hue_n = 0;
        for (row, want) in Kind::ALL.iter().enumerate() {
            for col in 0..40 {
                let px = cell(w, &rgb, row, col);
                let img = Image {
                    width: 32,
                    height: 32,
                    rgb: &px,
                };
                let Some((got, hue)) = check(&img) else {
                    continue;
                };
                if std::env::var_os("CHECKER_DEBUG").is_some() {
                    let m = foreground(&img);
                    eprintln!("{want:?} -> {got:?} {:?}", shape(&m, 32, 32));
                }
                *confusion.entry((*want, got)).or_default() += 1;
                let colour = match col / 4 {
                    0 => Some("red"),
                    5 => Some("blue"),
                    _ => None,
                };
                if let Some(c) = colour {
                    hue_n += 1;
                    hue_ok += usize::from(hue.map(hue_name) == Some(c));
                }
            }
        }
        let mut report = String::new();
        for want in Kind::ALL {
            let row: Vec<String> = Kind::ALL
                .iter()
                .filter_map(|g| confusion.get(&(want, *g)).map(|n| format!("{g:?} {n}")))
                .collect();
            report += &format!("{want:?}: {}\n", row.join(", "));
        }
        if std::env::var_os("CHECKER_DEBUG").is_some() {
            eprintln!("{report}");
        }
        let right = |k: Kind| confusion.get(&(k, k)).copied().unwrap_or(0);
        let total: usize = Kind::ALL.iter().map(|&k| right(k)).sum();
        let potion_false: usize = Kind::ALL
            .iter()
            .filter(|&&k| k != Kind::Potion)
            .map(|&k| confusion.get(&(k, Kind::Potion)).copied().unwrap_or(0))
            .sum();
        // Potions, the kind the model's test names, must be found and not imagined; the other
        // kinds only need to be told apart well enough that "potion" means something.
        assert!(right(Kind::Potion) >= 38, "{report}");
        assert!(potion_false <= 4, "{report}");
        assert!(total >= 320, "{total}/400 right\n{report}");
        assert!(hue_ok * 10 >= hue_n * 9, "{hue_ok}/{hue_n} hues\n{report}");
    }

    #[test]
    fn a_plain_image_shows_no_item() {
        let px = vec![200u8; 32 * 32 * 3];
        assert!(
            check(&Image {
                width: 32,
                height: 32,
                rgb: &px
            })
            .is_none()
        );
    }
}
