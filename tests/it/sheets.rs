//! Sprite sheets from the command line: a 4-direction walk packed into one sheet asset whose
//! every export is re-read by a parser we did not write (aseprite-loader for `.aseprite`, the
//! `aseprite` crate for Aseprite's array JSON, Phaser 3's own atlas parsers for the hash JSONs
//! and the multi-atlas, a Godot resource parser for the `.tres`), imported back, and the bad
//! inputs `sheet` meets.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mintframe_tests::{mintframe, run, stderr, stdout, workspace_root};
use serde_json::Value;

const W: u32 = 24;
const H: u32 = 32;

fn write_png(path: &Path, w: u32, h: u32, px: &[u8]) {
    let mut enc = png::Encoder::new(fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(px).unwrap();
}

fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Frame `k` of a walk: a body that wanders a pixel between frames, legs that swing.
fn walk_frame(k: u32, direction: u32) -> Vec<u8> {
    let mut px = vec![0u8; (W * H * 4) as usize];
    let mut fill = |x: u32, y: u32, w: u32, h: u32, c: [u8; 4]| {
        for yy in y..(y + h).min(H) {
            for xx in x..(x + w).min(W) {
                let i = ((yy * W + xx) * 4) as usize;
                px[i..i + 4].copy_from_slice(&c);
            }
        }
    };
    let bx = 8 + (k * 7 + direction) % 3;
    let tint = 60 * direction as u8;
    fill(bx + 1, 2, 6, 6, [240, 200, 160, 255]);
    fill(bx, 8, 8, 10, [40, tint, 200, 255]);
    let stride = [0i32, 2, 4, 2][k as usize % 4];
    for t in 0..12u32 {
        let l = (bx as i32 + 1 + stride * t as i32 / 12) as u32;
        let r = (bx as i32 + 5 - stride * t as i32 / 12) as u32;
        fill(l, 18 + t, 2, 1, [30, 30, 30, 255]);
        fill(r, 18 + t, 2, 1, [30, 30, 30, 255]);
    }
    px
}

fn node(args: &[&str]) -> Value {
    let script = workspace_root().join("tests/js/read-export.cjs");
    let o = Command::new("node")
        .arg(&script)
        .args(args)
        .current_dir(workspace_root().join("tests/js"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{:?} failed (scripts/setup installs tests/js): {}",
        args,
        stderr(&o)
    );
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn files_by_name(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_four_direction_walk_becomes_one_sheet_every_engine_format_reads_back() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("frames");
    fs::create_dir_all(&src).unwrap();
    let mut frames = Vec::new();
    for d in 0..4 {
        for k in 0..4 {
            let p = src.join(format!("walk_{d}_{k}.png"));
            write_png(&p, W, H, &walk_frame(k, d));
            frames.push(p);
        }
    }
    let out = work.path().join("out");
    let o = run(mintframe(&data)
        .args(["sheet", "pack"])
        .args(&frames)
        .args([
            "--name",
            "hero",
            "--directions",
            "4",
            "--fps",
            "8",
            "--format",
            "aseprite-json,aseprite-json-array,aseprite,texturepacker,texturepacker-array,phaser,godot,grid",
            "--json",
            "-o",
        ])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["assets"].as_array().unwrap().len(), 1);
    let roles: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    for role in ["main", "aseprite-json", "aseprite", "godot"] {
        assert!(roles.contains(&role), "no {role} among {roles:?}");
    }
    let names: Vec<String> = files_by_name(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "hero.array.json",
            "hero.aseprite",
            "hero.grid.json",
            "hero.json",
            "hero.phaser.json",
            "hero.png",
            "hero.tp-array.json",
            "hero.tp.json",
            "hero.tres"
        ]
    );

    // The grid: one direction a row, the anchored frames all one size.
    let (sw, sh, sheet) = read_png(&out.join("hero.png"));
    let grid: Value =
        serde_json::from_str(&fs::read_to_string(out.join("hero.grid.json")).unwrap()).unwrap();
    assert_eq!(
        (grid["columns"].as_u64(), grid["rows"].as_u64()),
        (Some(4), Some(4))
    );
    let (fw, fh) = (
        grid["frame_width"].as_u64().unwrap() as u32,
        grid["frame_height"].as_u64().unwrap() as u32,
    );
    assert_eq!((sw, sh), (fw * 4, fh * 4));
    let cell = |i: u32| -> Vec<u8> {
        let (cx, cy) = ((i % 4) * fw, (i / 4) * fh);
        let mut v = Vec::new();
        for y in cy..cy + fh {
            let s = ((y * sw + cx) * 4) as usize;
            v.extend_from_slice(&sheet[s..s + (fw * 4) as usize]);
        }
        v
    };

    // .aseprite, through aseprite-loader: 16 frames at 125 ms, the four walk tags, the pivot,
    // and every frame's pixels equal to the sheet's cell.
    let bytes = fs::read(out.join("hero.aseprite")).unwrap();
    let ase = aseprite_loader::loader::AsepriteFile::load(&bytes).unwrap();
    assert_eq!(ase.size(), (fw as u16, fh as u16));
    assert_eq!(ase.frames().len(), 16);
    assert!(ase.frames().iter().all(|f| f.duration == 125));
    let tags: Vec<(String, u16, u16)> = ase
        .tags()
        .iter()
        .map(|t| (t.name.to_string(), *t.range.start(), *t.range.end()))
        .collect();
    assert_eq!(
        tags,
        [
            ("walk_down".to_owned(), 0, 3),
            ("walk_left".to_owned(), 4, 7),
            ("walk_right".to_owned(), 8, 11),
            ("walk_up".to_owned(), 12, 15)
        ]
    );
    let pivot = ase.slices()[0].slice_keys[0].pivot.as_ref().unwrap();
    assert_eq!(
        (pivot.x, pivot.y),
        (
            grid["pivot"]["x"].as_i64().unwrap() as i32,
            grid["pivot"]["y"].as_i64().unwrap() as i32
        )
    );
    for i in 0..16 {
        let mut buf = vec![0u8; (fw * fh * 4) as usize];
        ase.render_frame(
            i,
            &mut buf,
            &aseprite_loader::loader::LayerSelection::Visible,
        )
        .unwrap();
        assert!(
            buf == cell(i as u32),
            "frame {i} of the .aseprite differs from the sheet"
        );
    }

    // Aseprite's array JSON, through the `aseprite` crate.
    let arr: aseprite::SpritesheetData =
        serde_json::from_str(&fs::read_to_string(out.join("hero.array.json")).unwrap()).unwrap();
    assert_eq!(arr.frames.len(), 16);
    assert_eq!(arr.meta.image.as_deref(), Some("hero.png"));
    assert_eq!((arr.frames[5].frame.x, arr.frames[5].frame.y), (fw, fh));
    assert_eq!(arr.meta.frame_tags.as_ref().unwrap().len(), 4);

    // Aseprite's hash JSON and TexturePacker's, through Phaser's JSONHash; the array and the
    // multi-atlas through its JSONArray. Every frame lands on its grid cell.
    for (kind, file) in [
        ("phaser-hash", "hero.json"),
        ("phaser-hash", "hero.tp.json"),
        ("phaser-array", "hero.tp-array.json"),
        ("phaser-multiatlas", "hero.phaser.json"),
    ] {
        let read = node(&[kind, out.join(file).to_str().unwrap()]);
        let frames = read["frames"].as_object().unwrap();
        assert_eq!(frames.len(), 16, "{file}");
        let mut cells: Vec<(u64, u64)> = frames
            .values()
            .map(|f| (f["x"].as_u64().unwrap(), f["y"].as_u64().unwrap()))
            .collect();
        cells.sort();
        let mut want: Vec<(u64, u64)> = (0..16u64)
            .map(|i| ((i % 4) * u64::from(fw), (i / 4) * u64::from(fh)))
            .collect();
        want.sort();
        assert_eq!(cells, want, "{file}");
        if file != "hero.json" {
            let p = &frames.values().next().unwrap()["pivot"];
            let px = grid["pivot"]["x"].as_f64().unwrap() / f64::from(fw);
            assert!((p["x"].as_f64().unwrap() - px).abs() < 1e-9, "{file}: {p}");
        }
    }
    let phaser: Value =
        serde_json::from_str(&fs::read_to_string(out.join("hero.phaser.json")).unwrap()).unwrap();
    assert_eq!(phaser["anims"][2]["key"], "walk_right");
    assert_eq!(phaser["anims"][2]["frames"].as_array().unwrap().len(), 4);

    // Godot's SpriteFrames, through a Godot resource parser.
    let tres = node(&["godot", out.join("hero.tres").to_str().unwrap()]);
    assert_eq!(tres["header"]["resourceType"], "SpriteFrames", "{tres}");
    assert_eq!(tres["extResources"][0]["path"], "hero.png");
    let subs = tres["subResources"].as_array().unwrap();
    assert_eq!(subs.len(), 16);
    for (i, sub) in subs.iter().enumerate() {
        let r = &sub["properties"]["region"];
        assert_eq!(r["type"], "Rect2");
        let i = i as u64;
        assert_eq!(
            (r["x"].as_u64(), r["y"].as_u64(), r["width"].as_u64()),
            (
                Some((i % 4) * u64::from(fw)),
                Some((i / 4) * u64::from(fh)),
                Some(u64::from(fw))
            )
        );
    }
    let anims = tres["resource"]["properties"]["animations"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = anims.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["walk_down", "walk_left", "walk_right", "walk_up"]);
    assert_eq!(anims[3]["speed"], 8);
    assert_eq!(anims[3]["frames"][1]["texture"]["id"], "AtlasTexture_13");

    // Back in: the .aseprite and the Aseprite JSON beside its PNG each become a sheet of the
    // same frames, tags and timing.
    for file in ["hero.aseprite", "hero.json"] {
        let again = work.path().join(format!("again-{file}"));
        let o = run(mintframe(&data)
            .args(["sheet", "import"])
            .arg(out.join(file))
            .args(["--name", "back", "--format", "aseprite", "--json", "-o"])
            .arg(&again));
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let (bw, bh, back) = read_png(&again.join("back.png"));
        assert_eq!((bw, bh), (sw, sh), "{file}");
        assert!(back == sheet, "{file}: the imported sheet's pixels differ");
        let bytes = fs::read(again.join("back.aseprite")).unwrap();
        let ase = aseprite_loader::loader::AsepriteFile::load(&bytes).unwrap();
        assert_eq!(ase.tags().len(), 4, "{file}");
        assert!(ase.frames().iter().all(|f| f.duration == 125), "{file}");
    }
    // And a plain library import of the .aseprite is an animation of its 16 frames.
    let o = run(mintframe(&data)
        .args(["library", "import"])
        .arg(out.join("hero.aseprite")));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn sheets_refuse_mixed_sizes_escaping_names_and_json_naming_missing_images() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let a = work.path().join("a.png");
    let b = work.path().join("b.png");
    write_png(&a, W, H, &walk_frame(0, 0));
    write_png(&b, W, H + 2, &vec![255; (W * (H + 2) * 4) as usize]);
    let out = work.path().join("out");

    let o = run(mintframe(&data)
        .args(["sheet", "pack"])
        .args([&a, &b])
        .arg("-o")
        .arg(&out));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("frame 1 is 24×34 but frame 0 is 24×32") && e.contains("same size"),
        "{e}"
    );

    let o = run(mintframe(&data)
        .args(["sheet", "pack"])
        .arg(&a)
        .args(["--name", "../../evil", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("sheet name \"../../evil\"") && e.contains("plain text"),
        "{e}"
    );

    let o = run(mintframe(&data)
        .args(["sheet", "pack"])
        .arg(&a)
        .args(["--directions", "3"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("do not split into 3 directions"),
        "{}",
        stderr(&o)
    );

    let o = run(mintframe(&data)
        .args(["sheet", "pack"])
        .arg(&a)
        .args(["--animation", "walk:0-5"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("\"walk\" spans frames 0..=5"),
        "{}",
        stderr(&o)
    );

    // An Aseprite JSON whose image is missing, and one whose image lies outside its folder.
    let json = work.path().join("sheet.json");
    let doc = |image: &str| {
        format!(
            r#"{{"frames":[{{"filename":"f0","frame":{{"x":0,"y":0,"w":4,"h":4}},"duration":100}}],
               "meta":{{"image":"{image}","size":{{"w":4,"h":4}}}}}}"#
        )
    };
    fs::write(&json, doc("nowhere.png")).unwrap();
    let o = run(mintframe(&data).args(["sheet", "import"]).arg(&json));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("nowhere.png"), "{e}");
    fs::write(&json, doc("../outside.png")).unwrap();
    let o = run(mintframe(&data).args(["sheet", "import"]).arg(&json));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("sheet.json") && e.contains("leaves the JSON's folder"),
        "{e}"
    );

    // Nothing was written anywhere, and the library holds no sheet.
    assert!(!out.exists());
    assert!(!work.path().join("evil").exists());
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap_or(Value::Array(Vec::new()));
    assert!(
        list.as_array()
            .is_none_or(|a| a.iter().all(|x| x["kind"] != "sprite_sheet")),
        "{list}"
    );
}
