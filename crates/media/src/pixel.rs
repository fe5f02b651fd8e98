//! Game-ready sprites from generated images, deterministically: keyed cut-outs with the spill
//! unmixed, binary alpha, alpha bleed, trim, pseudo-pixel grids back to real pixels, palettes
//! (built-in, GIMP `.gpl`, JASC `.pal`, `.hex`, a palette PNG) locked across a batch, dithering,
//! outlines and orphan clean-up. Colour distances are in OKLab, where equal steps look equal.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mintframe_types::{BuiltinPalette, Dither, Downscale, PostStep};

use crate::MediaError;
use crate::still::Rgba;

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A palette: at most 256 distinct colours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    pub colors: Vec<[u8; 3]>,
}

const MAX_COLORS: usize = 256;

fn hex_list(s: &str) -> Vec<[u8; 3]> {
    s.split_whitespace().filter_map(parse_hex).collect()
}

/// `#rrggbb` or `rrggbb`.
pub fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let h = s.trim().trim_start_matches('#');
    if h.len() != 6 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

impl Palette {
    pub fn builtin(p: BuiltinPalette) -> Palette {
        let colors = hex_list(match p {
            BuiltinPalette::Pico8 => {
                "000000 1d2b53 7e2553 008751 ab5236 5f574f c2c3c7 fff1e8 ff004d ffa300 ffec27 00e436 29adff 83769c ff77a8 ffccaa"
            }
            BuiltinPalette::Sweetie16 => {
                "1a1c2c 5d275d b13e53 ef7d57 ffcd75 a7f070 38b764 257179 29366f 3b5dc9 41a6f6 73eff7 f4f4f4 94b0c2 566c86 333c57"
            }
            BuiltinPalette::Endesga32 => {
                "be4a2f d77643 ead4aa e4a672 b86f50 733e39 3e2731 a22633 e43b44 f77622 feae34 fee761 63c74d 3e8948 265c42 193c3e 124e89 0099db 2ce8f5 ffffff c0cbdc 8b9bb4 5a6988 3a4466 262b44 181425 ff0044 68386c b55088 f6757a e8b796 c28569"
            }
            BuiltinPalette::Db32 => {
                "000000 222034 45283c 663931 8f563b df7126 d9a066 eec39a fbf236 99e550 6abe30 37946e 4b692f 524b24 323c39 3f3f74 306082 5b6ee1 639bff 5fcde4 cbdbfc ffffff 9badb7 847e87 696a6a 595652 76428a ac3232 d95763 d77bba 8f974a 8a6f30"
            }
            BuiltinPalette::GameBoy => "0f380f 306230 8bac0f 9bbc0f",
            BuiltinPalette::Nes => {
                "000000 fcfcfc f8f8f8 bcbcbc 7c7c7c a4e4fc 3cbcfc 0078f8 0000fc b8b8f8 6888fc 0058f8 0000bc d8b8f8 9878f8 6844fc 4428bc f8b8f8 f878f8 d800cc 940084 f8a4c0 f85898 e40058 a80020 f0d0b0 f87858 f83800 a81000 fce0a8 fca044 e45c10 881400 f8d878 f8b800 ac7c00 503000 d8f878 b8f818 00b800 007800 b8f8b8 58d854 00a800 006800 b8f8d8 58f898 00a844 005800 00fcfc 00e8d8 008888 004058 f8d8f8 787878"
            }
        });
        Palette { colors }
    }

    /// Reads a palette file, whatever its name says: a palette PNG (its distinct colours), a
    /// GIMP `.gpl`, a JASC `.pal`, or one hex colour a line (`.hex`, Lospec's export).
    pub fn read(path: &Path) -> Result<Palette, MediaError> {
        let bytes = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
        if bytes.starts_with(b"\x89PNG") {
            let img = crate::still::decode_png_rgba(&bytes, path, &crate::Limits::DEFAULT)?;
            let mut seen = Vec::new();
            for px in img.data.chunks_exact(4).filter(|p| p[3] > 0) {
                let c = [px[0], px[1], px[2]];
                if !seen.contains(&c) {
                    if seen.len() == MAX_COLORS {
                        return Err(bad(
                            path,
                            format!("holds more than {MAX_COLORS} colours; a palette has 1 to 256"),
                        ));
                    }
                    seen.push(c);
                }
            }
            return Palette::checked(path, seen);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| bad(path, "is not a palette: neither a PNG nor text"))?;
        Palette::parse(path, &text)
    }

    /// Parses palette text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Palette, MediaError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        let mut colors = Vec::new();
        let first = text.lines().next().unwrap_or("").trim();
        if first == "GIMP Palette" {
            lines.next();
            for (n, l) in lines {
                if l.is_empty()
                    || l.starts_with('#')
                    || l.contains(':') && !l.starts_with(|c: char| c.is_ascii_digit())
                {
                    continue; // comments, `Name:`, `Columns:`
                }
                let mut it = l.split_whitespace().map(str::parse::<u8>);
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(r)), Some(Ok(g)), Some(Ok(b))) => colors.push([r, g, b]),
                    _ => {
                        return Err(bad(
                            path,
                            format!("line {n} ({l:?}) is not `R G B name` with 0–255 values"),
                        ));
                    }
                }
            }
        } else if first == "JASC-PAL" {
            let _version = lines.next();
            let (n, count) = lines.nth(1).unwrap_or((2, ""));
            let count: usize = count
                .parse()
                .map_err(|_| bad(path, format!("line {n}: {count:?} is not a colour count")))?;
            for (n, l) in lines.filter(|(_, l)| !l.is_empty()) {
                let v: Vec<Result<u8, _>> = l.split_whitespace().map(str::parse::<u8>).collect();
                match v.as_slice() {
                    [Ok(r), Ok(g), Ok(b), ..] => colors.push([*r, *g, *b]),
                    _ => return Err(bad(path, format!("line {n} ({l:?}) is not `R G B`"))),
                }
            }
            if colors.len() != count {
                return Err(bad(
                    path,
                    format!("says {count} colours but lists {}", colors.len()),
                ));
            }
        } else {
            for (n, l) in lines.filter(|(_, l)| !l.is_empty() && !l.starts_with(';')) {
                colors.push(parse_hex(l).ok_or_else(|| {
                    bad(
                        path,
                        format!("line {n} ({l:?}) is not a colour; a .hex palette has one `rrggbb` a line (a .gpl starts with `GIMP Palette`, a .pal with `JASC-PAL`)"),
                    )
                })?);
            }
        }
        Palette::checked(path, colors)
    }

    fn checked(path: &Path, mut colors: Vec<[u8; 3]>) -> Result<Palette, MediaError> {
        let mut seen = std::collections::HashSet::new();
        colors.retain(|c| seen.insert(*c));
        match colors.len() {
            0 => Err(bad(path, "holds no colours; a palette has 1 to 256")),
            n if n > MAX_COLORS => Err(bad(
                path,
                format!("holds {n} colours; a palette has 1 to {MAX_COLORS}"),
            )),
            _ => Ok(Palette { colors }),
        }
    }
}

/// sRGB → OKLab (Björn Ottosson's matrices), for distances that match what eyes see.
fn oklab([r, g, b]: [u8; 3]) -> [f32; 3] {
    let lin = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(r), lin(g), lin(b));
    let l = (0.412_221_46 * r + 0.536_332_5 * g + 0.051_445_995 * b).cbrt();
    let m = (0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b).cbrt();
    let s = (0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b).cbrt();
    [
        0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
        1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
        0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
    ]
}

fn dist2(a: [f32; 3], b: [f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Nearest palette entry to a colour, memoised (a sprite has few distinct colours).
struct Nearest<'a> {
    lab: Vec<[f32; 3]>,
    palette: &'a [[u8; 3]],
    memo: HashMap<[u8; 3], [u8; 3]>,
}

impl<'a> Nearest<'a> {
    fn new(palette: &'a [[u8; 3]]) -> Nearest<'a> {
        Nearest {
            lab: palette.iter().map(|c| oklab(*c)).collect(),
            palette,
            memo: HashMap::new(),
        }
    }

    fn get(&mut self, c: [u8; 3]) -> [u8; 3] {
        if let Some(v) = self.memo.get(&c) {
            return *v;
        }
        let l = oklab(c);
        let mut best = (f32::INFINITY, 0);
        for (i, p) in self.lab.iter().enumerate() {
            let d = dist2(l, *p);
            if d < best.0 {
                best = (d, i);
            }
        }
        let v = self.palette[best.1];
        self.memo.insert(c, v);
        v
    }
}

/// The best `n` colours for every opaque pixel of `frames` together (median cut in OKLab):
/// one palette for a whole batch or animation, so no frame flickers to another.
pub fn median_cut(frames: &[Rgba], n: usize) -> Vec<[u8; 3]> {
    let mut hist: BTreeMap<[u8; 3], u64> = BTreeMap::new();
    for f in frames {
        for px in f.data.chunks_exact(4).filter(|p| p[3] > 0) {
            *hist.entry([px[0], px[1], px[2]]).or_default() += 1;
        }
    }
    let n = n.clamp(1, MAX_COLORS);
    if hist.len() <= n {
        return hist.into_keys().collect();
    }
    // Each entry: the colour, its OKLab coordinates, its pixel count.
    type Entry = ([u8; 3], [f32; 3], u64);
    let mut boxes: Vec<Vec<Entry>> =
        vec![hist.into_iter().map(|(c, w)| (c, oklab(c), w)).collect()];
    while boxes.len() < n {
        // Split the box with the widest spread (weighted by its pixel count), on that axis.
        let mut pick = None;
        for (i, b) in boxes.iter().enumerate().filter(|(_, b)| b.len() > 1) {
            for axis in 0..3 {
                let (lo, hi) = b
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), e| {
                        (lo.min(e.1[axis]), hi.max(e.1[axis]))
                    });
                let weight: u64 = b.iter().map(|e| e.2).sum();
                let score = (hi - lo) * (weight as f32).sqrt();
                if pick.is_none_or(|(s, _, _)| score > s) {
                    pick = Some((score, i, axis));
                }
            }
        }
        let Some((_, i, axis)) = pick else { break };
        let mut b = boxes.swap_remove(i);
        b.sort_by(|x, y| x.1[axis].total_cmp(&y.1[axis]).then(x.0.cmp(&y.0)));
        let total: u64 = b.iter().map(|e| e.2).sum();
        let mut acc = 0;
        let mut cut = 1;
        for (k, e) in b.iter().enumerate() {
            acc += e.2;
            if acc * 2 >= total {
                cut = (k + 1).clamp(1, b.len() - 1);
                break;
            }
        }
        let rest = b.split_off(cut);
        boxes.push(b);
        boxes.push(rest);
    }
    let mut out: Vec<[u8; 3]> = boxes
        .iter()
        .map(|b| {
            let w: u64 = b.iter().map(|e| e.2).sum::<u64>().max(1);
            let mean = |k: usize| {
                (b.iter().map(|e| u64::from(e.0[k]) * e.2).sum::<u64>() as f64 / w as f64).round()
                    as u8
            };
            [mean(0), mean(1), mean(2)]
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

const BAYER4: [[f32; 4]; 4] = [
    [0.0, 8.0, 2.0, 10.0],
    [12.0, 4.0, 14.0, 6.0],
    [3.0, 11.0, 1.0, 9.0],
    [15.0, 7.0, 13.0, 5.0],
];

/// Maps every opaque pixel of `img` to `palette`; transparent pixels are left alone.
pub fn quantize(img: &mut Rgba, palette: &[[u8; 3]], dither: Dither) {
    let mut near = Nearest::new(palette);
    let (w, h) = (img.width as usize, img.height as usize);
    // How far a dither may push a colour: about half the mean gap between palette colours.
    let spread = 96.0 / (palette.len() as f32).cbrt();
    let mut err = vec![
        [0f32; 3];
        if dither == Dither::FloydSteinberg {
            w * h
        } else {
            0
        }
    ];
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 4;
            if img.data[i + 3] == 0 {
                continue;
            }
            let src = [img.data[i], img.data[i + 1], img.data[i + 2]];
            let want: [f32; 3] = match dither {
                Dither::None => src.map(f32::from),
                Dither::Bayer => {
                    let t = (BAYER4[y % 4][x % 4] + 0.5) / 16.0 - 0.5;
                    src.map(|c| f32::from(c) + t * spread)
                }
                Dither::FloydSteinberg => {
                    let e = err[y * w + x];
                    [
                        f32::from(src[0]) + e[0],
                        f32::from(src[1]) + e[1],
                        f32::from(src[2]) + e[2],
                    ]
                }
            };
            let c = near.get(want.map(|v| v.round().clamp(0.0, 255.0) as u8));
            if dither == Dither::FloydSteinberg {
                let e = [
                    want[0] - f32::from(c[0]),
                    want[1] - f32::from(c[1]),
                    want[2] - f32::from(c[2]),
                ];
                let mut push = |dx: isize, dy: usize, k: f32| {
                    let nx = x as isize + dx;
                    if nx >= 0 && (nx as usize) < w && y + dy < h {
                        let j = (y + dy) * w + nx as usize;
                        for ch in 0..3 {
                            err[j][ch] += e[ch] * k;
                        }
                    }
                };
                push(1, 0, 7.0 / 16.0);
                push(-1, 1, 3.0 / 16.0);
                push(0, 1, 5.0 / 16.0);
                push(1, 1, 1.0 / 16.0);
            }
            img.data[i..i + 3].copy_from_slice(&c);
        }
    }
}

/// The key's dominant channel, which must stand clear of the other two (a green, blue or red
/// screen): keying works on how far a pixel leans towards it.
pub fn key_channel(key: [u8; 3]) -> Option<usize> {
    let (ci, &top) = key.iter().enumerate().max_by_key(|(_, v)| **v)?;
    let others = key
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ci)
        .map(|(_, v)| *v)
        .max()
        .unwrap_or(0);
    (top >= others.saturating_add(96)).then_some(ci)
}

/// A colour-difference keyer: `lean` = the key channel minus the larger other channel, as a
/// share of the key's own lean; alpha falls from 1 to 0 as `1 − lean` goes from `tolerance +
/// softness` down to `tolerance`. Then despill: the key channel is held to the larger of the
/// other two, so no edge keeps a green (or blue) cast. Refuses a key without a clear dominant
/// channel.
pub fn key_out(
    img: &mut Rgba,
    key: [u8; 3],
    tolerance: f32,
    softness: f32,
) -> Result<(), MediaError> {
    let ci = key_channel(key).ok_or_else(|| {
        bad(
            Path::new("<key>"),
            format!(
                "key colour #{:02x}{:02x}{:02x} has no dominant channel; generate on a saturated green (#00ff00), blue or red",
                key[0], key[1], key[2]
            ),
        )
    })?;
    let lean = |c: &[u8]| {
        let other = (0..3)
            .filter(|i| *i != ci)
            .map(|i| i32::from(c[i]))
            .max()
            .unwrap_or(0);
        i32::from(c[ci]) - other
    };
    let key_lean = lean(&key) as f32;
    let soft = softness.max(1e-6);
    for px in img.data.chunks_exact_mut(4) {
        let opaque = 1.0 - lean(px) as f32 / key_lean;
        let a = ((opaque - tolerance) / soft).clamp(0.0, 1.0);
        let alpha = (a * f32::from(px[3])).round() as u8;
        if alpha == 0 {
            px.copy_from_slice(&[0, 0, 0, 0]);
            continue;
        }
        let other = (0..3)
            .filter(|i| *i != ci)
            .map(|i| px[i])
            .max()
            .unwrap_or(0);
        px[ci] = px[ci].min(other);
        px[3] = alpha;
    }
    Ok(())
}

/// Alpha 0 or 255: at or above `threshold` opaque. Fully transparent pixels lose their colour.
pub fn binary_alpha(img: &mut Rgba, threshold: u8) {
    for px in img.data.chunks_exact_mut(4) {
        if px[3] >= threshold.max(1) {
            px[3] = 255;
        } else {
            px.copy_from_slice(&[0, 0, 0, 0]);
        }
    }
}

/// Gives every fully transparent pixel the mean colour of its nearest opaque neighbours
/// (growing outwards ring by ring), keeping alpha 0: filtered scaling then blends with the
/// sprite's own edge colour instead of black.
pub fn alpha_bleed(img: &mut Rgba) {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut known: Vec<bool> = img.data.chunks_exact(4).map(|p| p[3] > 0).collect();
    if !known.contains(&true) {
        return;
    }
    loop {
        let mut next = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if known[y * w + x] {
                    continue;
                }
                let (mut sum, mut n) = ([0u32; 3], 0u32);
                for (dx, dy) in [
                    (-1i64, 0i64),
                    (1, 0),
                    (0, -1),
                    (0, 1),
                    (-1, -1),
                    (1, -1),
                    (-1, 1),
                    (1, 1),
                ] {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if known[j] {
                        for (s, c) in sum.iter_mut().zip(&img.data[j * 4..j * 4 + 3]) {
                            *s += u32::from(*c);
                        }
                        n += 1;
                    }
                }
                if n > 0 {
                    next.push((y * w + x, sum.map(|s| (s / n) as u8)));
                }
            }
        }
        if next.is_empty() {
            return;
        }
        for (j, c) in next {
            img.data[j * 4..j * 4 + 3].copy_from_slice(&c);
            known[j] = true;
        }
    }
}

/// The box of pixels with alpha above 0, grown by `padding` (clamped to the image).
pub fn trim(img: &Rgba, padding: u32) -> Rgba {
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
        return Rgba {
            width: 1,
            height: 1,
            data: vec![0; 4],
        };
    }
    let (x0, y0) = (x0.saturating_sub(padding), y0.saturating_sub(padding));
    let (x1, y1) = ((x1 + padding).min(w), (y1 + padding).min(h));
    crate::frames::crop_rgba(img, [x0, y0, x1 - x0, y1 - y0])
}

/// The size of the pseudo-pixels a generated "pixel art" image is drawn in: the largest cell
/// size whose grid lines (at multiples of it) carry nearly all the colour change (75 %, where
/// an image without a grid puts about 1/c there). Multiples of the cell carry less (their grid
/// misses the lines in between), so the largest such size is the cell. `None` without a grid.
pub fn detect_cell(img: &Rgba) -> Option<u32> {
    let (w, h) = (img.width as usize, img.height as usize);
    let px = |x: usize, y: usize| &img.data[(y * w + x) * 4..(y * w + x) * 4 + 4];
    let diff = |a: &[u8], b: &[u8]| -> u32 {
        a.iter()
            .zip(b)
            .map(|(p, q)| u32::from(p.abs_diff(*q)))
            .sum()
    };
    // Colour change between column x-1 and x (summed over rows), and likewise for rows.
    let mut col = vec![0u64; w];
    let mut row = vec![0u64; h];
    for y in 0..h {
        for (x, c) in col.iter_mut().enumerate().skip(1) {
            *c += u64::from(diff(px(x - 1, y), px(x, y)));
        }
    }
    for (y, r) in row.iter_mut().enumerate().skip(1) {
        for x in 0..w {
            *r += u64::from(diff(px(x, y - 1), px(x, y)));
        }
    }
    let total: u64 = col.iter().chain(&row).sum();
    if total == 0 {
        return None;
    }
    let mut best = None;
    for c in 2..=32usize {
        if c * 2 > w.min(h) {
            break;
        }
        let on: u64 = col.iter().step_by(c).chain(row.iter().step_by(c)).sum();
        if on as f64 >= 0.75 * total as f64 {
            best = Some(c as u32);
        }
    }
    best
}

/// Cells of `cell`×`cell` pseudo-pixels to single pixels (a partial last row or column is
/// dropped).
pub fn downscale(img: &Rgba, cell: u32, method: Downscale) -> Rgba {
    let c = cell.max(1);
    let (ow, oh) = ((img.width / c).max(1), (img.height / c).max(1));
    let mut data = Vec::with_capacity((ow * oh * 4) as usize);
    let at = |x: u32, y: u32| {
        let i = ((y.min(img.height - 1) * img.width + x.min(img.width - 1)) * 4) as usize;
        [
            img.data[i],
            img.data[i + 1],
            img.data[i + 2],
            img.data[i + 3],
        ]
    };
    for oy in 0..oh {
        for ox in 0..ow {
            let (x0, y0) = (ox * c, oy * c);
            let px = match method {
                Downscale::Nearest => at(x0 + c / 2, y0 + c / 2),
                Downscale::Box => {
                    let mut s = [0u32; 4];
                    for y in y0..y0 + c {
                        for x in x0..x0 + c {
                            let p = at(x, y);
                            for ch in 0..4 {
                                s[ch] += u32::from(p[ch]);
                            }
                        }
                    }
                    s.map(|v| (v / (c * c)) as u8)
                }
                Downscale::Majority => {
                    let mut counts: BTreeMap<[u8; 4], u32> = BTreeMap::new();
                    for y in y0..y0 + c {
                        for x in x0..x0 + c {
                            *counts.entry(at(x, y)).or_default() += 1;
                        }
                    }
                    // BTreeMap order: among equal counts the lowest value wins, every time.
                    counts
                        .into_iter()
                        .fold(
                            ([0; 4], 0),
                            |best, (p, n)| if n > best.1 { (p, n) } else { best },
                        )
                        .0
                }
            };
            data.extend_from_slice(&px);
        }
    }
    Rgba {
        width: ow,
        height: oh,
        data,
    }
}

/// A 1-px outline in `color`: on transparent pixels touching the shape, or (`inner`) on the
/// shape's own edge pixels. Four-neighbour touch, so diagonals stay crisp.
pub fn outline(img: &mut Rgba, color: [u8; 4], inner: bool) {
    let (w, h) = (img.width as i64, img.height as i64);
    let opaque = |d: &[u8], x: i64, y: i64| {
        x >= 0 && y >= 0 && x < w && y < h && d[((y * w + x) * 4 + 3) as usize] > 0
    };
    let src = img.data.clone();
    for y in 0..h {
        for x in 0..w {
            let me = opaque(&src, x, y);
            let n4 = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)];
            let hit = if inner {
                me && n4.iter().any(|&(a, b)| !opaque(&src, a, b))
            } else {
                !me && n4.iter().any(|&(a, b)| opaque(&src, a, b))
            };
            if hit {
                let i = ((y * w + x) * 4) as usize;
                img.data[i..i + 4].copy_from_slice(&color);
            }
        }
    }
}

/// Pixels unlike each of their eight neighbours, where at least five neighbours share one
/// colour, take that colour (the lone specks quantization leaves).
pub fn clean_orphans(img: &mut Rgba) {
    let (w, h) = (img.width as i64, img.height as i64);
    let src = img.data.clone();
    let at = |x: i64, y: i64| -> Option<[u8; 4]> {
        (x >= 0 && y >= 0 && x < w && y < h).then(|| {
            let i = ((y * w + x) * 4) as usize;
            [src[i], src[i + 1], src[i + 2], src[i + 3]]
        })
    };
    for y in 0..h {
        for x in 0..w {
            let Some(me) = at(x, y) else { continue };
            let mut counts: BTreeMap<[u8; 4], u32> = BTreeMap::new();
            let mut lonely = true;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    if (dx, dy) == (0, 0) {
                        continue;
                    }
                    if let Some(n) = at(x + dx, y + dy) {
                        lonely &= n != me;
                        *counts.entry(n).or_default() += 1;
                    }
                }
            }
            if !lonely {
                continue;
            }
            if let Some((c, n)) = counts
                .into_iter()
                .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))
                && n >= 5
            {
                let i = ((y * w + x) * 4) as usize;
                img.data[i..i + 4].copy_from_slice(&c);
            }
        }
    }
}

/// Runs `steps` over every frame of every image of a batch, in order. A `Quantize` without an
/// explicit palette computes one palette for the whole batch at that point, so every frame of
/// every image shares it. Returns the palette a `Quantize` used, if any.
pub fn apply(
    images: &mut [Vec<Rgba>],
    steps: &[PostStep],
) -> Result<Option<Vec<[u8; 3]>>, MediaError> {
    let here = Path::new("<steps>");
    let mut used = None;
    for step in steps {
        match step {
            PostStep::Quantize {
                palette,
                colors,
                dither,
            } => {
                let pal = if palette.is_empty() {
                    if !(1..=256).contains(colors) {
                        return Err(bad(
                            here,
                            format!("{colors} colours: a palette has 1 to 256"),
                        ));
                    }
                    let all: Vec<Rgba> = images.iter().flatten().cloned().collect();
                    median_cut(&all, *colors as usize)
                } else {
                    palette.clone()
                };
                if pal.is_empty() {
                    return Err(bad(here, "nothing opaque to take a palette from"));
                }
                for f in images.iter_mut().flatten() {
                    quantize(f, &pal, *dither);
                }
                used = Some(pal);
            }
            other => {
                for frames in images.iter_mut() {
                    for f in frames.iter_mut() {
                        *f = apply_one(f, other)?;
                    }
                }
            }
        }
    }
    Ok(used)
}

fn apply_one(img: &Rgba, step: &PostStep) -> Result<Rgba, MediaError> {
    let here = Path::new("<steps>");
    let mut out = img.clone();
    match step {
        PostStep::Key {
            color,
            tolerance,
            softness,
        } => {
            if !(tolerance.is_finite()
                && softness.is_finite()
                && *tolerance >= 0.0
                && *softness >= 0.0)
            {
                return Err(bad(
                    here,
                    "key tolerance and softness must be finite and ≥ 0",
                ));
            }
            key_out(&mut out, *color, *tolerance, *softness)?;
        }
        PostStep::BinaryAlpha { threshold } => binary_alpha(&mut out, *threshold),
        PostStep::AlphaBleed => alpha_bleed(&mut out),
        PostStep::Trim { padding } => out = trim(img, *padding),
        PostStep::Pixelate { cell, method } => {
            let c = match cell {
                Some(c) => *c,
                None => detect_cell(img).ok_or_else(|| {
                    bad(
                        here,
                        "no pseudo-pixel grid found in the image; give the cell size (--cell N)",
                    )
                })?,
            };
            if c == 0 || c > img.width || c > img.height {
                return Err(bad(
                    here,
                    format!(
                        "cell {c} does not fit the {}×{} image: the target would be larger than the source or empty",
                        img.width, img.height
                    ),
                ));
            }
            out = downscale(img, c, *method);
        }
        PostStep::Outline { color, inner } => outline(&mut out, *color, *inner),
        PostStep::CleanOrphans => clean_orphans(&mut out),
        PostStep::Quantize { .. } => {}
        PostStep::Matte { model, .. } => {
            return Err(bad(
                here,
                format!("matting with {model} runs a network: the studio runs that step"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Rgba {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&f(x, y));
            }
        }
        Rgba {
            width: w,
            height: h,
            data,
        }
    }

    fn noise(seed: u32) -> impl Fn(u32, u32) -> [u8; 4] {
        move |x, y| {
            let mut v = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed)
                .wrapping_mul(2_654_435_761);
            v ^= v >> 13;
            [(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8, 255]
        }
    }

    #[test]
    fn after_quantization_every_pixel_is_in_the_palette_for_every_dither() {
        for p in BuiltinPalette::ALL {
            let pal = Palette::builtin(*p).colors;
            for d in Dither::ALL {
                let mut im = img(24, 24, noise(7));
                quantize(&mut im, &pal, *d);
                for px in im.data.chunks_exact(4) {
                    assert!(pal.contains(&[px[0], px[1], px[2]]), "{p} {d}: {px:?}");
                }
            }
        }
    }

    #[test]
    fn a_batch_shares_one_palette_of_at_most_n_colours() {
        let mut batch = vec![
            vec![img(16, 16, noise(1)), img(16, 16, noise(2))],
            vec![img(20, 12, noise(3))],
        ];
        let steps = [PostStep::Quantize {
            palette: Vec::new(),
            colors: 8,
            dither: Dither::None,
        }];
        let pal = apply(&mut batch, &steps).expect("apply").expect("palette");
        assert!(pal.len() <= 8 && !pal.is_empty());
        let mut used = std::collections::HashSet::new();
        for f in batch.iter().flatten() {
            for px in f.data.chunks_exact(4) {
                let c = [px[0], px[1], px[2]];
                assert!(pal.contains(&c));
                used.insert(c);
            }
        }
        assert!(used.len() <= 8);
        // The same input gives the same palette: nothing random.
        let mut again = vec![
            vec![img(16, 16, noise(1)), img(16, 16, noise(2))],
            vec![img(20, 12, noise(3))],
        ];
        assert_eq!(apply(&mut again, &steps).expect("again"), Some(pal));
        assert_eq!(again, batch);
    }

    #[test]
    fn a_keyed_cut_out_is_clear_on_the_key_and_solid_inside_with_no_spill() {
        // A red disc on green, with a one-pixel soft rim that mixes the two.
        let key = [0, 255, 0];
        let mut im = img(32, 32, |x, y| {
            let d = ((x as f32 - 16.0).powi(2) + (y as f32 - 16.0).powi(2)).sqrt();
            if d < 10.0 {
                [200, 30, 30, 255]
            } else if d < 11.0 {
                [100, 142, 15, 255] // half red, half key
            } else {
                [0, 255, 0, 255]
            }
        });
        key_out(&mut im, key, 0.1, 0.5).expect("key");
        let px =
            |x: u32, y: u32| &im.data[((y * 32 + x) * 4) as usize..((y * 32 + x) * 4 + 4) as usize];
        assert_eq!(px(0, 0)[3], 0);
        assert_eq!(px(31, 31), &[0, 0, 0, 0]);
        assert_eq!(px(16, 16), &[200, 30, 30, 255]);
        // The rim keeps its red and loses its green spill.
        let rim = px(26, 16);
        assert!(rim[3] > 0, "{rim:?}");
        assert!(rim[1] <= rim[0], "spill left in {rim:?}");
        // Every pixel that is the key, or near it, is clear.
        let mut near = img(4, 1, |x, _| [x as u8 * 5, 250, x as u8 * 3, 255]);
        key_out(&mut near, key, 0.1, 0.5).expect("key");
        assert!(
            near.data.chunks_exact(4).all(|p| p[3] == 0),
            "{:?}",
            near.data
        );
        let e = key_out(&mut near, [200, 200, 200], 0.1, 0.5)
            .expect_err("grey key")
            .to_string();
        assert!(e.contains("no dominant channel"), "{e}");
    }

    #[test]
    fn a_pseudo_pixel_image_comes_back_to_its_pixels() {
        let small = img(8, 8, noise(5));
        let big = img(32, 32, |x, y| {
            let i = (((y / 4) * 8 + x / 4) * 4) as usize;
            [small.data[i], small.data[i + 1], small.data[i + 2], 255]
        });
        assert_eq!(detect_cell(&big), Some(4));
        // Large flat areas (so the cell's multiples carry much of the change too) still give 4.
        let blocks = img(64, 64, |x, y| {
            let v = if (x / 12 + y / 20) % 2 == 0 { 40 } else { 200 };
            let fine = ((x / 4 + y / 4) % 2) as u8 * 9;
            [v + fine, v, v, 255]
        });
        assert_eq!(detect_cell(&blocks), Some(4));
        for m in Downscale::ALL {
            assert_eq!(downscale(&big, 4, *m), small, "{m}");
        }
        assert_eq!(detect_cell(&img(16, 16, |_, _| [9, 9, 9, 255])), None);
    }

    #[test]
    fn palettes_parse_from_every_format_and_bad_ones_name_the_line() {
        let p = Path::new("p");
        let gpl = "GIMP Palette\nName: x\nColumns: 2\n# c\n  0   0   0\tblack\n255 255 255 white\n";
        assert_eq!(
            Palette::parse(p, gpl).expect("gpl").colors,
            vec![[0, 0, 0], [255, 255, 255]]
        );
        let pal = "JASC-PAL\n0100\n2\n1 2 3\n4 5 6\n";
        assert_eq!(
            Palette::parse(p, pal).expect("pal").colors,
            vec![[1, 2, 3], [4, 5, 6]]
        );
        assert_eq!(
            Palette::parse(p, "ff0000\n#00ff00\n").expect("hex").colors,
            vec![[255, 0, 0], [0, 255, 0]]
        );
        let e = Palette::parse(p, "ff0000\nnope\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Palette::parse(p, "\n").expect_err("empty").to_string();
        assert!(e.contains("no colours"), "{e}");
        let many: String = (0..300).map(|i| format!("{:06x}\n", i * 7)).collect();
        let e = Palette::parse(p, &many).expect_err("many").to_string();
        assert!(e.contains("300 colours"), "{e}");
        let e = Palette::parse(p, "JASC-PAL\n0100\n3\n1 2 3\n")
            .expect_err("count")
            .to_string();
        assert!(e.contains("says 3 colours but lists 1"), "{e}");
        assert_eq!(Palette::builtin(BuiltinPalette::Pico8).colors.len(), 16);
        assert_eq!(Palette::builtin(BuiltinPalette::Db32).colors.len(), 32);
        assert_eq!(Palette::builtin(BuiltinPalette::Endesga32).colors.len(), 32);
        assert_eq!(Palette::builtin(BuiltinPalette::GameBoy).colors.len(), 4);
        assert_eq!(Palette::builtin(BuiltinPalette::Nes).colors.len(), 55);
    }

    #[test]
    fn binary_alpha_bleed_trim_and_outline_leave_clean_edges() {
        let mut im = img(10, 10, |x, y| {
            if (3..7).contains(&x) && (3..7).contains(&y) {
                [10, 20, 30, if x == 3 { 100 } else { 255 }]
            } else {
                [255, 255, 255, 40]
            }
        });
        binary_alpha(&mut im, 128);
        assert!(im.data.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255));
        alpha_bleed(&mut im);
        // Transparent pixels now carry the sprite's colour, not white.
        assert_eq!(&im.data[0..4], &[10, 20, 30, 0]);
        let t = trim(&im, 1);
        assert_eq!((t.width, t.height), (5, 6));
        let mut o = t.clone();
        outline(&mut o, [0, 0, 0, 255], false);
        assert_eq!(
            &o.data[0..4],
            &[10, 20, 30, 0],
            "corners stay clear (4-neighbour)"
        );
        assert_eq!(&o.data[4..8], &[0, 0, 0, 255]);
        let mut cut = img(5, 5, |x, y| {
            if (x, y) == (2, 2) {
                [255, 0, 0, 255]
            } else {
                [0, 0, 255, 255]
            }
        });
        clean_orphans(&mut cut);
        assert!(cut.data.chunks_exact(4).all(|p| p == [0, 0, 255, 255]));
    }

    #[test]
    fn a_cell_larger_than_the_source_is_refused_by_name() {
        let mut b = vec![vec![img(8, 8, noise(1))]];
        let e = apply(
            &mut b,
            &[PostStep::Pixelate {
                cell: Some(16),
                method: Downscale::Nearest,
            }],
        )
        .expect_err("too big")
        .to_string();
        assert!(e.contains("larger than the source"), "{e}");
        let e = apply(
            &mut b,
            &[PostStep::Quantize {
                palette: Vec::new(),
                colors: 0,
                dither: Dither::None,
            }],
        )
        .expect_err("0")
        .to_string();
        assert!(e.contains("1 to 256"), "{e}");
    }
}

/// The median colour of the image's outermost pixels: a plain background's colour.
pub fn border_median(img: &Rgba) -> [u8; 3] {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut chans: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                let i = (y * w + x) * 4;
                for (c, v) in chans.iter_mut().enumerate() {
                    v.push(img.data[i + c]);
                }
            }
        }
    }
    chans.map(|mut v| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    })
}

/// Makes the background transparent: pixels reachable from the image's edge (4-connected)
/// whose colour lies within `tolerance` (largest channel difference) of the border's median.
/// Unlike a key colour, a like colour inside the subject stays, since it is not reached.
pub fn cut_background(img: &mut Rgba, tolerance: u8) {
    let bg = border_median(img);
    let (w, h) = (img.width as usize, img.height as usize);
    let near = |d: &[u8], i: usize| (0..3).all(|c| d[i * 4 + c].abs_diff(bg[c]) <= tolerance);
    let mut seen = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if (x == 0 || y == 0 || x + 1 == w || y + 1 == h) && near(&img.data, y * w + x) {
                seen[y * w + x] = true;
                stack.push(y * w + x);
            }
        }
    }
    while let Some(i) = stack.pop() {
        img.data[i * 4 + 3] = 0;
        let (x, y) = (i % w, i / w);
        let mut visit = |j: usize| {
            if !seen[j] && near(&img.data, j) {
                seen[j] = true;
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
}

/// Nearest-neighbour scaling by a whole factor (pixel art stays crisp).
pub fn upscale(img: &Rgba, factor: u32) -> Rgba {
    let f = factor.max(1);
    // Sides past the limit every decoder keeps (16384) are never asked for; refuse to grow.
    if u64::from(img.width) * u64::from(f) > 16384 || u64::from(img.height) * u64::from(f) > 16384 {
        return img.clone();
    }
    let (w, h) = (img.width * f, img.height * f);
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let i = (((y / f) * img.width + x / f) * 4) as usize;
            data.extend_from_slice(&img.data[i..i + 4]);
        }
    }
    Rgba {
        width: w,
        height: h,
        data,
    }
}

/// The image mirrored left to right.
pub fn flip_horizontal(img: &Rgba) -> Rgba {
    let w = img.width as usize;
    if w == 0 {
        return img.clone();
    }
    let mut out = img.clone();
    for (src, dst) in img
        .data
        .chunks_exact(w * 4)
        .zip(out.data.chunks_exact_mut(w * 4))
    {
        for x in 0..w {
            dst[x * 4..x * 4 + 4].copy_from_slice(&src[(w - 1 - x) * 4..(w - x) * 4]);
        }
    }
    out
}

#[cfg(test)]
mod background_tests {
    use super::*;

    #[test]
    fn the_background_goes_and_a_like_colour_inside_the_subject_stays() {
        // A 10×10 grey field, a red ring, grey inside the ring.
        let mut img = Rgba {
            width: 10,
            height: 10,
            data: vec![0; 400],
        };
        for y in 0..10 {
            for x in 0..10 {
                let ring = (2..=7).contains(&x)
                    && (2..=7).contains(&y)
                    && (x == 2 || x == 7 || y == 2 || y == 7);
                let c = if ring { [200, 0, 0] } else { [120, 121, 119] };
                let i = (y * 10 + x) * 4;
                img.data[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
            }
        }
        cut_background(&mut img, 8);
        let a = |x: usize, y: usize| img.data[(y * 10 + x) * 4 + 3];
        assert_eq!(a(0, 0), 0);
        assert_eq!(a(2, 2), 255, "the ring stays");
        assert_eq!(a(5, 5), 255, "grey inside the ring is not reached");
        let f = flip_horizontal(&img);
        assert_eq!(f.data[(2 * 10 + 7) * 4], 200);
        assert_eq!(upscale(&img, 2).width, 20);
    }
}
