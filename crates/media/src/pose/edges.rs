//! Edge maps for edge ControlNets, from any image: Canny edges (as ControlNet's Canny annotator
//! makes them: OpenCV's Canny on the RGB image, 3×3 Sobel per channel, the strongest channel,
//! L1 magnitude, thresholds 100 and 200 by default) and a line-art map (thin dark strokes of the
//! image as white lines on black: a difference of Gaussians on luminance, thresholded softly).

use super::render::Canvas;

/// Gradients of the strongest channel at each pixel: (gx, gy) by 3×3 Sobel, replicated border.
fn sobel(img: &Canvas) -> (Vec<i32>, Vec<i32>) {
    let (w, h) = (img.width as usize, img.height as usize);
    let px = |x: isize, y: isize, c: usize| -> i32 {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        i32::from(img.data[(y * w + x) * 3 + c])
    };
    let mut gx = vec![0; w * h];
    let mut gy = vec![0; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut best = (0, 0, -1);
            for c in 0..3 {
                let dx = (px(x + 1, y - 1, c) + 2 * px(x + 1, y, c) + px(x + 1, y + 1, c))
                    - (px(x - 1, y - 1, c) + 2 * px(x - 1, y, c) + px(x - 1, y + 1, c));
                let dy = (px(x - 1, y + 1, c) + 2 * px(x, y + 1, c) + px(x + 1, y + 1, c))
                    - (px(x - 1, y - 1, c) + 2 * px(x, y - 1, c) + px(x + 1, y - 1, c));
                let m = dx.abs() + dy.abs();
                if m > best.2 {
                    best = (dx, dy, m);
                }
            }
            let i = y as usize * w + x as usize;
            gx[i] = best.0;
            gy[i] = best.1;
        }
    }
    (gx, gy)
}

/// Canny edges, white on black: non-maximum suppression along the gradient, then hysteresis
/// (weak edges kept where 8-connected to a strong one).
pub fn canny(img: &Canvas, low: u32, high: u32) -> Canvas {
    let (w, h) = (img.width as usize, img.height as usize);
    let (gx, gy) = sobel(img);
    let mag: Vec<i32> = gx.iter().zip(&gy).map(|(a, b)| a.abs() + b.abs()).collect();
    let (low, high) = (low.min(high) as i32, low.max(high) as i32);
    // 0 none, 1 weak, 2 strong.
    let mut class = vec![0u8; w * h];
    let at = |x: isize, y: isize| -> i32 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0
        } else {
            mag[y as usize * w + x as usize]
        }
    };
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            let m = mag[i];
            if m <= low {
                continue;
            }
            let (ax, ay) = (f64::from(gx[i].abs()), f64::from(gy[i].abs()));
            // tan 22.5° and tan 67.5°: the gradient's direction to one of four neighbours' axes.
            let (n1, n2) = if ay <= ax * 0.414_213_56 {
                (at(x - 1, y), at(x + 1, y))
            } else if ay >= ax * 2.414_213_56 {
                (at(x, y - 1), at(x, y + 1))
            } else if (gx[i] < 0) == (gy[i] < 0) {
                (at(x - 1, y - 1), at(x + 1, y + 1))
            } else {
                (at(x + 1, y - 1), at(x - 1, y + 1))
            };
            if m > n1 && m >= n2 {
                class[i] = if m > high { 2 } else { 1 };
            }
        }
    }
    let mut stack: Vec<usize> = (0..w * h).filter(|&i| class[i] == 2).collect();
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if class[j] == 1 {
                    class[j] = 2;
                    stack.push(j);
                }
            }
        }
    }
    let mut out = Canvas::new(img.width, img.height, [0, 0, 0]);
    for (i, c) in class.iter().enumerate() {
        if *c == 2 {
            out.data[i * 3..i * 3 + 3].copy_from_slice(&[255, 255, 255]);
        }
    }
    out
}

fn blur(src: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let r = (sigma * 3.0).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let o = j as isize - r;
                    let (sx, sy) = if horizontal { (x + o, y) } else { (x, y + o) };
                    let sx = sx.clamp(0, w as isize - 1) as usize;
                    let sy = sy.clamp(0, h as isize - 1) as usize;
                    acc += kv * src[sy * w + sx];
                }
                out[y as usize * w + x as usize] = acc;
            }
        }
        out
    };
    pass(&pass(src, true), false)
}

/// A line-art map, white lines on black: where the image is darker than its surroundings at
/// the scale of a stroke (a difference of Gaussians of luminance), strength `gain`.
pub fn lineart(img: &Canvas, gain: f32) -> Canvas {
    let (w, h) = (img.width as usize, img.height as usize);
    let luma: Vec<f32> = img
        .data
        .chunks_exact(3)
        .map(|p| {
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) / 255.0
        })
        .collect();
    let fine = blur(&luma, w, h, 0.8);
    let coarse = blur(&luma, w, h, 1.6);
    let mut out = Canvas::new(img.width, img.height, [0, 0, 0]);
    for i in 0..w * h {
        // Darker than the surroundings: a stroke.
        let d = (coarse[i] - fine[i]) * gain;
        let v = (d.clamp(0.0, 1.0) * 255.0).round() as u8;
        out.data[i * 3..i * 3 + 3].copy_from_slice(&[v, v, v]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Canvas {
        // A dark 12×12 square on a light 32×32 field.
        let mut c = Canvas::new(32, 32, [220, 220, 220]);
        for y in 10..22 {
            for x in 10..22 {
                let i = (y * 32 + x) * 3;
                c.data[i..i + 3].copy_from_slice(&[30, 40, 50]);
            }
        }
        c
    }

    fn white(c: &Canvas, x: usize, y: usize) -> bool {
        c.data[(y * c.width as usize + x) * 3] > 128
    }

    #[test]
    fn canny_outlines_a_square_with_thin_edges_and_nothing_inside() {
        let e = canny(&square(), 100, 200);
        assert!(white(&e, 10, 16) || white(&e, 9, 16), "the left edge");
        assert!(white(&e, 16, 21) || white(&e, 16, 22), "the bottom edge");
        assert!(!white(&e, 16, 16), "nothing inside");
        assert!(!white(&e, 2, 2), "nothing outside");
        // Thin: no row crosses the left edge with more than two edge pixels.
        let run = (5..15).filter(|x| white(&e, *x, 16)).count();
        assert!(run <= 2, "{run} pixels wide");
        // A flat image has no edges, and high thresholds drop weak ones.
        let flat = canny(&Canvas::new(16, 16, [90, 90, 90]), 100, 200);
        assert!(flat.data.iter().all(|v| *v == 0));
        let none = canny(&square(), 5000, 6000);
        assert!(none.data.iter().all(|v| *v == 0));
    }

    #[test]
    fn lineart_finds_a_dark_stroke_and_not_a_flat_field() {
        let mut c = Canvas::new(32, 32, [230, 230, 230]);
        for y in 4..28 {
            let i = (y * 32 + 16) * 3;
            c.data[i..i + 3].copy_from_slice(&[10, 10, 10]);
        }
        let l = lineart(&c, 4.0);
        assert!(white(&l, 16, 16), "the stroke is a white line");
        assert!(!white(&l, 4, 16), "the field stays black");
    }
}
