//! The compositor on the machine's adapter (Mesa's lavapipe in CI): exact properties, and golden
//! images in `crates/render/golden/` compared with a tolerance. On a mismatch the test writes
//! `<name>-actual.png` and `<name>-diff.png` beside the reference; `UPDATE_SNAPSHOTS=1`
//! rewrites the references.

use std::path::{Path, PathBuf};

use super::*;

fn renderer() -> Renderer {
    Renderer::new().expect("a headless adapter (lavapipe: install mesa-vulkan-drivers)")
}

/// An 8×8 sprite: an opaque red/blue checker with a transparent border and a half-transparent
/// green centre.
fn sprite() -> Image {
    let mut rgba = Vec::new();
    for y in 0..8u32 {
        for x in 0..8u32 {
            let px = if x == 0 || y == 0 || x == 7 || y == 7 {
                [0, 0, 0, 0]
            } else if (3..5).contains(&x) && (3..5).contains(&y) {
                [0, 255, 0, 128]
            } else if (x + y) % 2 == 0 {
                [220, 40, 40, 255]
            } else {
                [40, 60, 220, 255]
            };
            rgba.extend_from_slice(&px);
        }
    }
    Image::new(8, 8, rgba).expect("image")
}

fn solid(rgb: [u8; 3]) -> View {
    View {
        backdrop: Backdrop::Solid(rgb),
        ..View::default()
    }
}

#[test]
fn every_shader_in_shaders_is_valid_wgsl() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("shaders/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let module = naga::front::wgsl::parse_str(&text)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&text)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        n += 1;
    }
    assert!(n >= 1, "no shaders found in {}", dir.display());
}

#[test]
fn nearest_zoom_makes_blocks_of_identical_pixels() {
    let r = renderer();
    let out = r
        .render(
            &sprite(),
            &View {
                zoom: 4,
                ..solid([0, 0, 0])
            },
        )
        .expect("render");
    assert_eq!((out.width, out.height), (32, 32));
    let src = sprite();
    for y in 0..32 {
        for x in 0..32 {
            let s = src.pixel(x / 4, y / 4);
            let o = out.pixel(x, y);
            if s[3] == 255 {
                assert_eq!(&o[..3], &s[..3], "({x},{y})");
            }
            assert_eq!(o, out.pixel(x / 4 * 4, y / 4 * 4), "block at ({x},{y})");
        }
    }
}

#[test]
fn a_transparent_frame_over_red_is_exactly_the_backdrop() {
    let r = renderer();
    let clear = Image::new(5, 3, vec![0; 5 * 3 * 4]).expect("image");
    let out = r.render(&clear, &solid([255, 0, 0])).expect("render");
    assert!(out.rgba.chunks(4).all(|p| p == [255, 0, 0, 255]));
}

#[test]
fn half_alpha_blends_over_the_backdrop() {
    let r = renderer();
    let out = r.render(&sprite(), &solid([0, 0, 0])).expect("render");
    // 0 + 255·128/255 over black.
    let g = out.pixel(3, 3);
    assert_eq!((g[0], g[2]), (0, 0));
    assert!((127..=129).contains(&g[1]), "{g:?}");
}

#[test]
fn tile_mode_repeats_the_frame_three_by_three() {
    let r = renderer();
    let view = View {
        zoom: 2,
        tile: true,
        ..solid([10, 20, 30])
    };
    let out = r.render(&sprite(), &view).expect("render");
    assert_eq!((out.width, out.height), (48, 48));
    for y in 0..16 {
        for x in 0..16 {
            for (dx, dy) in [(16, 0), (32, 0), (0, 16), (16, 32), (32, 32)] {
                assert_eq!(
                    out.pixel(x, y),
                    out.pixel(x + dx, y + dy),
                    "({x},{y})+({dx},{dy})"
                );
            }
        }
    }
}

#[test]
fn onion_skin_shows_the_neighbours_faded_where_the_frame_is_clear() {
    let r = renderer();
    let clear = Image::new(8, 8, vec![0; 8 * 8 * 4]).expect("image");
    let white = Image::new(8, 8, vec![255; 8 * 8 * 4]).expect("image");
    let view = View {
        onion: Some(Onion {
            prev: Some(white),
            next: None,
            opacity: 0.5,
        }),
        ..solid([0, 0, 0])
    };
    let out = r.render(&clear, &view).expect("render");
    // White tinted halfway to (1, .25, .25), at half opacity over black.
    let p = out.pixel(4, 4);
    assert!((126..=129).contains(&p[0]), "{p:?}");
    assert!((78..=82).contains(&p[1]), "{p:?}");
    let plain = r.render(&clear, &solid([0, 0, 0])).expect("render");
    assert_eq!(plain.pixel(4, 4), [0, 0, 0, 255]);
}

#[test]
fn impossible_views_are_refused_with_the_numbers() {
    let r = renderer();
    let e = r
        .render(
            &sprite(),
            &View {
                zoom: 0,
                ..View::default()
            },
        )
        .expect_err("zoom 0");
    assert!(e.to_string().contains("zoom 0"), "{e}");
    let big = Image::new(4096, 1, vec![0; 4096 * 4]).expect("image");
    let e = r
        .render(
            &big,
            &View {
                zoom: 4,
                ..View::default()
            },
        )
        .expect_err("too wide");
    assert!(e.to_string().contains("16384×4"), "{e}");
    assert!(Image::new(2, 2, vec![0; 3]).is_err());
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn write_png(path: &Path, img: &Image) {
    let file = std::fs::File::create(path).expect("create png");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), img.width, img.height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("header");
    w.write_image_data(&img.rgba).expect("data");
}

fn read_png(path: &Path) -> Option<Image> {
    let file = std::fs::File::open(path).ok()?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    buf.truncate(info.buffer_size());
    Image::new(info.width, info.height, buf).ok()
}

/// Compares with `golden/<name>.png` (each channel within `tolerance`): software and hardware
/// rasterisers may differ by a rounding step in blends.
fn assert_golden(name: &str, img: &Image, tolerance: u8) {
    let dir = golden_dir();
    let reference = dir.join(format!("{name}.png"));
    std::fs::create_dir_all(&dir).expect("golden dir");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        write_png(&reference, img);
        return;
    }
    let Some(want) = read_png(&reference) else {
        write_png(&dir.join(format!("{name}-actual.png")), img);
        panic!(
            "{} is missing; run with UPDATE_SNAPSHOTS=1 to create it",
            reference.display()
        );
    };
    let same_size = (want.width, want.height) == (img.width, img.height);
    let mut worst = 0u8;
    let mut diff = Vec::with_capacity(img.rgba.len());
    if same_size {
        for (a, b) in img.rgba.chunks(4).zip(want.rgba.chunks(4)) {
            let d = a
                .iter()
                .zip(b)
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0);
            worst = worst.max(d);
            let v = if d > tolerance {
                255
            } else {
                d.saturating_mul(16)
            };
            diff.extend_from_slice(&[v, 0, 0, 255]);
        }
    }
    if !same_size || worst > tolerance {
        write_png(&dir.join(format!("{name}-actual.png")), img);
        if same_size {
            write_png(
                &dir.join(format!("{name}-diff.png")),
                &Image::new(img.width, img.height, diff).expect("diff"),
            );
        }
        panic!(
            "{name}: differs from {} (largest channel difference {worst}, tolerance {tolerance}, sizes {}×{} vs {}×{}); see {name}-actual.png and {name}-diff.png",
            reference.display(),
            img.width,
            img.height,
            want.width,
            want.height
        );
    }
}

#[test]
fn golden_sprite_zoomed_over_checker_with_grid() {
    let r = renderer();
    let view = View {
        zoom: 6,
        grid: true,
        ..View::default()
    };
    assert_golden(
        "sprite-6x-checker-grid",
        &r.render(&sprite(), &view).expect("render"),
        2,
    );
}

#[test]
fn golden_sprite_tiled_linear() {
    let r = renderer();
    let view = View {
        zoom: 3,
        tile: true,
        sampling: Sampling::Linear,
        ..solid([30, 30, 40])
    };
    assert_golden(
        "sprite-3x-tiled-linear",
        &r.render(&sprite(), &view).expect("render"),
        3,
    );
}

#[test]
fn thumbnails_shrink_to_fit_keep_the_aspect_and_never_enlarge() {
    let r = renderer();
    // 64×32: red left half, blue right half.
    let mut rgba = Vec::new();
    for _y in 0..32 {
        for x in 0..64 {
            rgba.extend_from_slice(if x < 32 {
                &[255, 0, 0, 255]
            } else {
                &[0, 0, 255, 255]
            });
        }
    }
    let img = Image::new(64, 32, rgba).expect("image");
    let t = r
        .thumbnail(&img, 16, Backdrop::Solid([0, 0, 0]))
        .expect("thumb");
    assert_eq!((t.width, t.height), (16, 8));
    assert_eq!(t.pixel(2, 4), [255, 0, 0, 255]);
    assert_eq!(t.pixel(13, 4), [0, 0, 255, 255]);

    let small = r
        .thumbnail(&sprite(), 64, Backdrop::Solid([0, 0, 0]))
        .expect("small");
    assert_eq!((small.width, small.height), (8, 8));
    assert_eq!(small.pixel(1, 1), [220, 40, 40, 255]);
}

#[test]
fn a_transparent_frame_over_a_background_image_shows_the_image_exactly() {
    let r = renderer();
    let clear = Image::new(4, 4, vec![0; 64]).expect("clear");
    let mut bg = Vec::new();
    for y in 0..8u8 {
        for x in 0..8u8 {
            bg.extend_from_slice(&[x * 30, y * 30, 200, 255]);
        }
    }
    let bg = Image::new(8, 8, bg).expect("bg");
    let out = r
        .render(
            &clear,
            &View {
                zoom: 2,
                backdrop_image: Some(bg.clone()),
                ..View::default()
            },
        )
        .expect("render");
    assert_eq!((out.width, out.height), (8, 8));
    assert_eq!(out.rgba, bg.rgba);
}
