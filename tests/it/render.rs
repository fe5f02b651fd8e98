//! `mintframe render`: headless preview stills from a file or a library asset, on the machine's
//! adapter (Mesa's lavapipe in CI).

use std::fs;
use std::path::Path;

use mintframe_tests::{mintframe, run, stderr, stdout};

fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn a_generated_tile_renders_zoomed_and_repeated_three_by_three() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let o = run(mintframe(&data).args([
        "generate",
        "stone floor",
        "-m",
        "tiny-sd",
        "--seed",
        "3",
        "--steps",
        "1",
        "--seamless",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();

    let out = work.path().join("tile.png");
    let o = run(mintframe(&data)
        .args(["render", &id[..8], "--zoom", "2", "--tile", "-o"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = decode(&out);
    assert_eq!((w, h), (384, 384));
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        px[i..i + 4].to_vec()
    };
    for (x, y) in [(0, 0), (17, 90), (127, 127), (64, 3)] {
        assert_eq!(at(x, y), at(x + 128, y), "({x},{y})");
        assert_eq!(at(x, y), at(x + 256, y + 256), "({x},{y})");
        // Nearest at 2×: each source pixel is a 2×2 block.
        assert_eq!(at(x / 2 * 2, y / 2 * 2), at(x / 2 * 2 + 1, y / 2 * 2 + 1));
    }

    // The same still from its file gives the same render.
    let exported = work.path().join("exported");
    let o = run(mintframe(&data)
        .args(["library", "export", &id])
        .arg(&exported));
    assert!(o.status.success(), "{}", stderr(&o));
    let png = fs::read_dir(&exported)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let out2 = work.path().join("tile2.png");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&png)
        .args(["--zoom", "2", "--tile", "-o"])
        .arg(&out2));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(decode(&out2).2, px);
}

#[test]
fn render_refuses_what_it_cannot_show() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let out = work.path().join("o.png");

    let fake = work.path().join("sprite.png");
    fs::write(&fake, b"GIF89a not a png").unwrap();
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&fake)
        .arg("-o")
        .arg(&out));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("sprite.png") && stderr(&o).contains("not a readable PNG"),
        "{}",
        stderr(&o)
    );

    let o = run(mintframe(&data).args(["generate", "x", "--steps", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();
    let o = run(mintframe(&data)
        .args(["render", &id, "--zoom", "0", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("zoom 0"), "{}", stderr(&o));
    let o = run(mintframe(&data)
        .args(["render", &id, "--backdrop", "plaid", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("plaid"), "{}", stderr(&o));
    assert!(!out.exists());

    let gif = work.path().join("walk.gif");
    fs::write(&gif, mintframe_tests::many_frame_gif(3)).unwrap();
    let o = run(mintframe(&data).args(["library", "import"]).arg(&gif));
    let gif_id = stdout(&o)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();
    let o = run(mintframe(&data).args(["render", &gif_id, "-o"]).arg(&out));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no still image to preview"),
        "{}",
        stderr(&o)
    );

    // A JPEG still renders like a PNG (FFmpeg decodes it, under the same limits).
    let jpg = work.path().join("photo.jpg");
    assert!(
        std::process::Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=s=32x24",
                "-frames:v",
                "1"
            ])
            .arg(&jpg)
            .status()
            .unwrap()
            .success()
    );
    let o = run(mintframe(&data).args(["library", "import"]).arg(&jpg));
    assert!(o.status.success(), "{}", stderr(&o));
    let jpg_id = stdout(&o)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();
    let o = run(mintframe(&data).args(["render", &jpg_id, "-o"]).arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("deprecated pixel format"),
        "{}",
        stderr(&o)
    );
    assert_eq!(decode(&out).0, 32);
}

fn write_strip(path: &Path) {
    // Four 8×8 frames in a row: red, transparent, blue, green.
    let colours: [[u8; 4]; 4] = [
        [255, 0, 0, 255],
        [0, 0, 0, 0],
        [0, 0, 255, 255],
        [0, 255, 0, 255],
    ];
    let mut data = Vec::new();
    for _y in 0..8 {
        for c in colours {
            for _x in 0..8 {
                data.extend_from_slice(&c);
            }
        }
    }
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(fs::File::create(path).unwrap()),
        32,
        8,
    );
    enc.set_color(png::ColorType::Rgba);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&data).unwrap();
}

#[test]
fn one_frame_of_a_sheet_renders_with_its_onion_skin() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let sheet = work.path().join("slime walk.png");
    write_strip(&sheet);
    let out = work.path().join("f.png");
    let render = |extra: &[&str]| {
        run(mintframe(&data)
            .arg("render")
            .arg(&sheet)
            .args(["--frame", "8x8", "--backdrop", "#000000", "-o"])
            .arg(&out)
            .args(extra))
    };
    let o = render(&["--index", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = decode(&out);
    assert_eq!((w, h), (8, 8));
    assert!(
        px.chunks(4).all(|p| p == [0, 0, 255, 255]),
        "frame 2 is blue"
    );

    // The transparent frame 1 shows nothing of its own: black without onion skin, its
    // neighbours (red before, blue after) faded in with it.
    let o = render(&["--index", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(decode(&out).2.chunks(4).all(|p| p == [0, 0, 0, 255]));
    let o = render(&["--index", "1", "--onion"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = decode(&out).2[..4].to_vec();
    assert!(
        p[0] > 40 && p[2] > 40,
        "red and blue neighbours both show: {p:?}"
    );

    let o = render(&["--index", "4"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("has 4 frames of 8×8"), "{}", stderr(&o));
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&sheet)
        .args(["--frame", "64x8", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("frame size 64×8 does not fit the 32×8 sheet"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_sheet_becomes_a_looping_gif_with_every_frame() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let sheet = work.path().join("walk.png");
    write_strip(&sheet);
    let out = work.path().join("walk.gif");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&sheet)
        .args([
            "--frame",
            "8x8",
            "--zoom",
            "2",
            "--backdrop",
            "#000000",
            "--gif",
            "--fps",
            "10",
            "-o",
        ])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(fs::File::open(&out).unwrap()).unwrap();
    assert_eq!((dec.width(), dec.height()), (16, 16));
    let mut firsts = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        assert_eq!(f.delay, 10, "10 fps is 10 hundredths a frame");
        firsts.push(f.buffer[..4].to_vec());
    }
    assert_eq!(
        firsts,
        vec![
            vec![255, 0, 0, 255],
            vec![0, 0, 0, 255],
            vec![0, 0, 255, 255],
            vec![0, 255, 0, 255]
        ]
    );

    let o = run(mintframe(&data)
        .arg("render")
        .arg(&sheet)
        .args(["--gif", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--frame WxH"), "{}", stderr(&o));
}

fn write_gif(path: &Path, colours: &[[u8; 3]], w: u16, h: u16) {
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w, h, &[]).unwrap();
        enc.set_repeat(gif::Repeat::Infinite).unwrap();
        for c in colours {
            let mut px = [c[0], c[1], c[2], 255].repeat(usize::from(w) * usize::from(h));
            let mut f = gif::Frame::from_rgba_speed(w, h, &mut px, 10);
            f.delay = 10;
            enc.write_frame(&f).unwrap();
        }
    }
    fs::write(path, out).unwrap();
}

fn gif_frames(path: &Path) -> Vec<(u16, u16, Vec<u8>)> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(f) = d.read_next_frame().unwrap() {
        v.push((f.width, f.height, f.buffer.to_vec()));
    }
    v
}

#[test]
fn an_imported_gif_gets_an_animated_thumbnail_and_a_contact_sheet() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("blink.gif");
    let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
    write_gif(&src, &colours, 40, 20);
    let o = run(mintframe(&data).args(["library", "import"]).arg(&src));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();

    // The library thumbnail: every frame, shrunk to 16 px on the longest side, still moving.
    let thumb = work.path().join("thumb.gif");
    let o = run(mintframe(&data)
        .args(["render", &id, "--thumbnail", "16", "-o"])
        .arg(&thumb));
    assert!(o.status.success(), "{}", stderr(&o));
    let frames = gif_frames(&thumb);
    assert_eq!(frames.len(), 3);
    for ((w, h, px), c) in frames.iter().zip(colours) {
        assert_eq!((*w, *h), (16, 8));
        assert_eq!(&px[..4], &[c[0], c[1], c[2], 255]);
    }

    // A contact sheet of the file itself: 2 columns, 2 rows, 2-px gutters, at 1×.
    let sheet = work.path().join("sheet.png");
    let o = run(mintframe(&data)
        .args(["render"])
        .arg(&src)
        .args(["--contact-sheet", "2", "-o"])
        .arg(&sheet));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = decode(&sheet);
    assert_eq!((w, h), (2 * 40 + 3 * 2, 2 * 20 + 3 * 2));
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [px[i], px[i + 1], px[i + 2]]
    };
    assert_eq!(at(2, 2), [255, 0, 0]);
    assert_eq!(at(44, 2), [0, 255, 0]);
    assert_eq!(at(2, 24), [0, 0, 255]);
    assert_eq!(at(0, 0), [0x20, 0x20, 0x20]);
}

fn ffmpeg(args: &[&str]) {
    let o = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg program (Debian package `ffmpeg`, installed by scripts/setup)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn videos_decode_to_frames_mp4_and_webm_with_alpha() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    // Half a second of solid red at 10 fps, H.264 in MP4.
    let mp4 = work.path().join("red.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=32x16:r=10:d=0.5",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        mp4.to_str().unwrap(),
    ]);
    let sheet = work.path().join("mp4-sheet.png");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&mp4)
        .args(["--contact-sheet", "5", "--backdrop", "#000000", "-o"])
        .arg(&sheet));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = decode(&sheet);
    // Five frames of 32×16 in one row, 2-px gutters.
    assert_eq!((w, h), (5 * 32 + 6 * 2, 16 + 2 * 2));
    let i = ((10 * w + 10) * 4) as usize;
    let (r, g, b) = (px[i], px[i + 1], px[i + 2]);
    assert!(
        r > 230 && g < 30 && b < 30,
        "not red after YUV→RGB: {r},{g},{b}"
    );

    // VP9 in WebM with an alpha plane: half-transparent blue over black stays half blue.
    let webm = work.path().join("ghost.webm");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=blue@0.5:s=16x16:r=5:d=0.4,format=yuva420p",
        "-c:v",
        "libvpx-vp9",
        "-pix_fmt",
        "yuva420p",
        "-auto-alt-ref",
        "0",
        webm.to_str().unwrap(),
    ]);
    let one = work.path().join("webm-sheet.png");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&webm)
        .args(["--contact-sheet", "1", "--backdrop", "#000000", "-o"])
        .arg(&one));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, _, px) = decode(&one);
    let i = ((8 * w + 8) * 4) as usize;
    let b = px[i + 2];
    assert!((100..=160).contains(&b), "alpha lost: blue {b} over black");

    // Imported as an asset, a clip gets an animated thumbnail.
    let o = run(mintframe(&data).args(["library", "import"]).arg(&mp4));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).split_whitespace().last().unwrap().to_owned();
    let thumb = work.path().join("clip-thumb.gif");
    let o = run(mintframe(&data)
        .args(["render", &id, "--thumbnail", "16", "-o"])
        .arg(&thumb));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(gif_frames(&thumb).len(), 5);
}

#[test]
fn a_sheet_becomes_an_animated_webp_and_a_sprite_sits_on_a_game_background() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    // A 2-frame sheet of 2×2 cells: opaque red, then fully transparent.
    let sheet = work.path().join("blink.png");
    let mut px = Vec::new();
    for _ in 0..2 {
        px.extend([255, 0, 0, 255].repeat(2));
        px.extend([0, 0, 0, 0].repeat(2));
    }
    let mut enc = png::Encoder::new(fs::File::create(&sheet).unwrap(), 4, 2);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&px).unwrap();

    let webp = work.path().join("blink.webp");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&sheet)
        .args(["--frame", "2x2", "--webp", "--fps", "5", "-o"])
        .arg(&webp));
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = fs::read(&webp).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let frames = bytes.windows(4).filter(|w| *w == b"ANMF").count();
    assert_eq!(frames, 2, "one ANMF chunk a frame");

    // The transparent half of the sheet over a 2-colour background image.
    let bg = work.path().join("level.png");
    let mut px = Vec::new();
    for _ in 0..4 {
        px.extend([0, 255, 0, 255].repeat(4));
        px.extend([0, 0, 255, 255].repeat(4));
    }
    let mut enc = png::Encoder::new(fs::File::create(&bg).unwrap(), 8, 4);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    let out = work.path().join("in-game.png");
    let o = run(mintframe(&data)
        .arg("render")
        .arg(&sheet)
        .args(["--zoom", "2", "--backdrop-image"])
        .arg(&bg)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = decode(&out);
    assert_eq!((w, h), (8, 4));
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [px[i], px[i + 1], px[i + 2]]
    };
    // Left half of the output: the red sprite cells; right half: the sprite is clear there, so
    // the background's blue half shows.
    assert_eq!(at(1, 1), [255, 0, 0]);
    assert_eq!(at(6, 1), [0, 0, 255]);
}
