//! Headless frames per second: upload a frame, composite it (checker backdrop, nearest zoom),
//! read the result back — the path thumbnails, contact sheets and exports take.
//!
//! `cargo run -p mintframe-render --example render_bench -- <frame_w> <frame_h> <zoom> [frames]`

use std::time::Instant;

use mintframe_render::{Image, Renderer, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (w, h, zoom) = (
        *args.first().unwrap_or(&512),
        *args.get(1).unwrap_or(&512),
        *args.get(2).unwrap_or(&1),
    );
    let frames = *args.get(3).unwrap_or(&60);
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8, 200]
        })
        .collect();
    let frame = Image::new(w, h, rgba)?;
    let r = Renderer::new()?;
    let view = View {
        zoom,
        ..View::default()
    };
    // The first render compiles the pipeline on some drivers: not counted.
    let out = r.render(&frame, &view)?;
    let t = Instant::now();
    for _ in 0..frames {
        r.render(&frame, &view)?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"adapter\":\"{}\",\"frame\":\"{w}x{h}\",\"zoom\":{zoom},\"output\":\"{}x{}\",\"frames\":{frames},\"seconds\":{s:.3},\"fps\":{:.1}}}",
        r.adapter(),
        out.width,
        out.height,
        f64::from(frames) / s
    );
    Ok(())
}
