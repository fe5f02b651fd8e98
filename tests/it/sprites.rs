//! Game-ready sprites from the command line: pixel art in a locked palette, keyed cut-outs, and
//! the bad inputs those commands meet. Outputs are re-read here with the `png` crate.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use mintframe_tests::{mintframe, run, stderr, stdout};
use serde_json::Value;

const PICO8: [[u8; 3]; 16] = [
    [0x00, 0x00, 0x00],
    [0x1d, 0x2b, 0x53],
    [0x7e, 0x25, 0x53],
    [0x00, 0x87, 0x51],
    [0xab, 0x52, 0x36],
    [0x5f, 0x57, 0x4f],
    [0xc2, 0xc3, 0xc7],
    [0xff, 0xf1, 0xe8],
    [0xff, 0x00, 0x4d],
    [0xff, 0xa3, 0x00],
    [0xff, 0xec, 0x27],
    [0x00, 0xe4, 0x36],
    [0x29, 0xad, 0xff],
    [0x83, 0x76, 0x9c],
    [0xff, 0x77, 0xa8],
    [0xff, 0xcc, 0xaa],
];

fn rgba(path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let mut dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let px = buf[..info.buffer_size()]
        .chunks_exact(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    (info.width, info.height, px)
}

fn generate(data: &Path, seed: u32) -> String {
    let o = run(mintframe(data).args([
        "generate",
        "a slime",
        "-m",
        "tiny-sd",
        "--steps",
        "2",
        "--size",
        "64x64",
        "--seed",
        &seed.to_string(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["outputs"][0].as_str().unwrap().to_owned()
}

#[test]
fn generated_images_become_pixel_art_in_one_locked_palette_with_their_recipe() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let a = generate(&data, 1);
    let b = generate(&data, 2);
    let out = work.path().join("out");

    // The PICO-8 palette, cells of 2 → 32×32, every pixel in the palette.
    let o = run(mintframe(&data)
        .args(["pixelate", &a, "--cell", "2", "--palette", "pico-8", "-o"])
        .arg(&out)
        .arg("--json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let pngs = |r: &Value| -> Vec<std::path::PathBuf> {
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Path::new(f.as_str().unwrap()).to_owned())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect()
    };
    let file = pngs(&r).remove(0);
    let (w, h, px) = rgba(&file);
    assert_eq!((w, h), (32, 32));
    for p in &px {
        assert!(
            p[3] == 0 || PICO8.contains(&[p[0], p[1], p[2]]),
            "{p:?} is not PICO-8"
        );
        assert!(p[3] == 0 || p[3] == 255, "alpha {} is not binary", p[3]);
    }
    // The recipe is the generation's plus the steps, so the sprite can be made again.
    let id = r["assets"][0].as_str().unwrap();
    let o = run(mintframe(&data).args(["library", "show", id, "--json"]));
    let detail: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let steps: Vec<&str> = detail["recipe"]["post_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["binary_alpha", "pixelate", "quantize", "clean_orphans"]
    );
    assert_eq!(detail["recipe"]["seed"], 1);

    // Two images, the best 6 colours for both: one palette, at most 6 colours in all.
    let o = run(mintframe(&data)
        .args([
            "pixelate", &a, &b, "--cell", "4", "--colors", "6", "--dither", "bayer", "-o",
        ])
        .arg(work.path().join("batch"))
        .arg("--json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut colours = HashSet::new();
    let batch = pngs(&r);
    assert_eq!(batch.len(), 2);
    for f in &batch {
        let (w, _, px) = rgba(f);
        assert_eq!(w, 16);
        colours.extend(px.iter().filter(|p| p[3] > 0).map(|p| [p[0], p[1], p[2]]));
    }
    assert!(
        !colours.is_empty() && colours.len() <= 6,
        "{} colours across the batch",
        colours.len()
    );
    // The same command gives the same bytes.
    let again = work.path().join("again");
    let o = run(mintframe(&data)
        .args([
            "pixelate", &a, &b, "--cell", "4", "--colors", "6", "--dither", "bayer", "-o",
        ])
        .arg(&again));
    assert!(o.status.success(), "{}", stderr(&o));
    for f in &batch {
        assert_eq!(
            fs::read(f).unwrap(),
            fs::read(again.join(f.file_name().unwrap())).unwrap()
        );
    }
}

fn write_png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) {
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&f(x, y));
        }
    }
    let mut enc = png::Encoder::new(fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Rgba);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&data).unwrap();
}

#[test]
fn a_sprite_on_a_green_screen_is_cut_out_clear_on_the_key_and_solid_inside() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("slime.png");
    write_png(&src, 48, 40, |x, y| {
        if (12..36).contains(&x) && (10..30).contains(&y) {
            [180, 40, 200, 255]
        } else {
            [0, 255, 0, 255]
        }
    });
    let out = work.path().join("out");
    let o = run(mintframe(&data)
        .args(["cutout"])
        .arg(&src)
        .args(["--trim", "2", "-o"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, px) = rgba(&out.join("slime-cutout.png"));
    assert_eq!((w, h), (28, 24), "trimmed to the sprite plus 2 px");
    for y in 0..h {
        for x in 0..w {
            let p = px[(y * w + x) as usize];
            let inside = (2..26).contains(&x) && (2..22).contains(&y);
            if inside {
                assert_eq!(p, [180, 40, 200, 255], "({x},{y})");
            } else {
                assert_eq!(p[3], 0, "({x},{y}) is key but not clear: {p:?}");
                // Alpha bleed: the clear pixels carry the sprite's colour, not green.
                assert!(p[1] < 100, "({x},{y}) kept the key's green: {p:?}");
            }
        }
    }
}

#[test]
fn bad_palettes_cells_and_keys_are_refused_by_name_and_nothing_is_made() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("s.png");
    write_png(&src, 8, 8, |x, y| [(x * 30) as u8, (y * 30) as u8, 90, 255]);
    let empty = work.path().join("empty.hex");
    fs::write(&empty, "\n\n").unwrap();
    let broken = work.path().join("broken.gpl");
    fs::write(&broken, "GIMP Palette\n255 0 0 red\n12 blue\n").unwrap();
    let many = work.path().join("many.hex");
    fs::write(
        &many,
        (0..300)
            .map(|i| format!("{:06x}\n", i * 11))
            .collect::<String>(),
    )
    .unwrap();
    for (args, says) in [
        (vec!["--palette", empty.to_str().unwrap()], "no colours"),
        (vec!["--palette", broken.to_str().unwrap()], "line 3"),
        (vec!["--palette", many.to_str().unwrap()], "300 colours"),
        (vec!["--palette", "pico-9"], "neither a built-in palette"),
        (vec!["--colors", "0"], "1 to 256"),
        (vec!["--cell", "16"], "larger than the source"),
    ] {
        let o = run(mintframe(&data).arg("pixelate").arg(&src).args(&args));
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    let o = run(mintframe(&data)
        .arg("cutout")
        .arg(&src)
        .args(["--key", "#808080"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no dominant channel"), "{}", stderr(&o));
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    assert_eq!(stdout(&o).trim(), "[]", "a refused run made an asset");
}

/// The journey's first step in one call: a prompt becomes a 32×32 PICO-8 sprite on a clear
/// background, cut out by U²-Net-p (its real weights), with a recipe that makes it again.
#[test]
fn one_prompt_makes_a_32_pixel_pico_8_sprite_cut_out_into_the_library() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let make = |out: &Path| -> Value {
        let o = run(mintframe(&data)
            .args([
                "sprite", "a slime", "-m", "tiny-sd", "--size", "64x64", "--steps", "2", "--seed",
                "3", "--json", "-o",
            ])
            .arg(out));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let first = work.path().join("first");
    let r = make(&first);
    let png_of = |r: &Value| -> std::path::PathBuf {
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Path::new(f.as_str().unwrap()).to_owned())
            .find(|p| p.extension().is_some_and(|e| e == "png"))
            .unwrap()
    };
    let (w, h, px) = rgba(&png_of(&r));
    assert_eq!((w, h), (32, 32));
    let clear = px.iter().filter(|p| p[3] == 0).count();
    let solid = px.iter().filter(|p| p[3] == 255).count();
    assert_eq!(clear + solid, px.len(), "alpha is 0 or 255 only");
    assert!(clear > 0 && solid > 0, "{clear} clear, {solid} solid");
    for p in px.iter().filter(|p| p[3] == 255) {
        assert!(PICO8.contains(&[p[0], p[1], p[2]]), "{p:?} is not PICO-8");
    }
    let id = r["assets"][0].as_str().unwrap();
    let o = run(mintframe(&data).args(["library", "show", id, "--json"]));
    let detail: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let matte = &detail["recipe"]["post_steps"][0];
    assert_eq!(matte["step"], "matte");
    assert_eq!(
        matte["sha256"],
        "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
    );
    // The same call makes the same sprite, byte for byte.
    let second = work.path().join("second");
    let again = make(&second);
    assert_eq!(
        fs::read(png_of(&r)).unwrap(),
        fs::read(png_of(&again)).unwrap()
    );
}

/// U²-Net-p cuts a figure out of a plain backdrop: clear around it, solid inside it.
#[test]
fn u2netp_cuts_a_figure_out_of_any_plain_background_and_a_wrong_model_file_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("figure.png");
    let inside = |x: u32, y: u32| {
        let (fx, fy) = (f64::from(x), f64::from(y));
        ((fx - 80.0) / 24.0).powi(2) + ((fy - 50.0) / 24.0).powi(2) <= 1.0
            || ((fx - 80.0) / 36.0).powi(2) + ((fy - 125.0) / 52.0).powi(2) <= 1.0
    };
    write_png(&src, 160, 190, |x, y| {
        if inside(x, y) {
            if y < 76 {
                [236, 188, 150, 255]
            } else {
                [150, 40, 60, 255]
            }
        } else {
            [205, 214, 226, 255]
        }
    });
    let out = work.path().join("out");
    let o = run(mintframe(&data)
        .args(["cutout", "--method", "u2netp", "--json", "-o"])
        .arg(&out)
        .arg(&src));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let file = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Path::new(f.as_str().unwrap()).to_owned())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let (w, _, px) = rgba(&file);
    let (mut inter, mut union) = (0, 0);
    for (i, p) in px.iter().enumerate() {
        let (x, y) = (i as u32 % w, i as u32 / w);
        let (ours, truth) = (p[3] >= 128, inside(x, y));
        inter += usize::from(ours && truth);
        union += usize::from(ours || truth);
    }
    let iou = inter as f64 / union as f64;
    assert!(iou >= 0.9, "IoU {iou}");
    // Corners are the backdrop: clear. The body's centre: solid.
    assert_eq!(px[0][3], 0);
    assert_eq!(px[(125 * w + 80) as usize][3], 255);

    // A file in U²-Net-p's place that is not U²-Net-p: refused by its hash, nothing made.
    let fake = work.path().join("u2netp.onnx");
    fs::write(&fake, b"not a model").unwrap();
    let o = run(mintframe(&data)
        .env("MINTFRAME_U2NETP", &fake)
        .args(["cutout", "--method", "u2netp"])
        .arg(&src));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("u2netp.onnx has sha256") && e.contains("scripts/setup"),
        "{e}"
    );
}

/// Latent transparency from the command line: LayerDiffuse's decoder (tiny random weights in the
/// real layout, the parity fixture's) gives the tiny model's images an alpha channel, and the
/// recipe names the decoder by hash. Its SDXL attention file on an SD 1.x model is refused.
#[test]
fn generate_transparent_makes_rgba_through_layerdiffuse_and_refuses_attention_for_another_base() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let decoder =
        mintframe_tests::workspace_root().join("tests/fixtures/layerdiffuse/tiny.safetensors");
    let out = work.path().join("out");
    let o = run(mintframe(&data)
        .args([
            "generate",
            "a glass potion",
            "-m",
            "tiny-sd",
            "--size",
            "64x64",
            "--steps",
            "2",
            "--seed",
            "4",
            "--json",
            "-o",
        ])
        .arg(&out)
        .arg("--transparent")
        .arg(&decoder));
    assert!(o.status.success(), "{}", stderr(&o));
    let png = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let (w, h, px) = rgba(&png);
    assert_eq!((w, h), (64, 64));
    let alphas: HashSet<u8> = px.iter().map(|p| p[3]).collect();
    assert!(alphas.len() > 1, "the alpha is flat: {alphas:?}");
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = r["outputs"][0].as_str().unwrap();
    let o = run(mintframe(&data).args(["library", "show", id, "--json"]));
    let detail: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let t = &detail["recipe"]["transparent"];
    assert_eq!(t["augmented"], false);
    assert_eq!(
        t["decoder"]["sha256"].as_str().unwrap().len(),
        64,
        "{detail}"
    );

    // LayerDiffuse's SDXL attention (forge layout, a 2048-wide text context) on the SD 1.x
    // tiny model: the file and the fix are named, nothing is generated.
    let xl = work.path().join("layer_xl_transparent_attn.safetensors");
    let base = "diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
    mintframe_tests::write_safetensors(
        &xl,
        &[
            (&format!("{base}::lora::0"), vec![32, 4], vec![0.01; 128]),
            (&format!("{base}::lora::1"), vec![4, 2048], vec![0.01; 8192]),
        ],
    );
    let o = run(mintframe(&data)
        .args([
            "generate",
            "a glass potion",
            "-m",
            "tiny-sd",
            "--size",
            "64x64",
            "--steps",
            "2",
            "--lora",
        ])
        .arg(&xl));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("layer_xl_transparent_attn")
            && e.contains("made for SDXL")
            && e.contains("use the version"),
        "{e}"
    );
}
