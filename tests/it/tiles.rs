//! Seamless tiles and corner tilesets from the command line. Exports are re-read by parsers we
//! did not write: the `tiled` crate (the .tsx and the sample map), a Godot resource parser (the
//! TileSet .tres).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mintframe_tests::{mintframe, run, stderr, stdout, workspace_root};
use serde_json::Value;

fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn tile(data: &Path, prompt: &str, seed: &str, out: &Path) -> Value {
    let o = run(mintframe(data)
        .args([
            "tile", prompt, "--size", "64x64", "--steps", "2", "--seed", seed, "--json", "-o",
        ])
        .arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn files(r: &Value) -> Vec<PathBuf> {
    r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect()
}

#[test]
fn two_seamless_terrains_become_a_corner_tileset_godot_and_tiled_read_back() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let grass = tile(&data, "grass", "1", &work.path().join("grass"));
    let sand = tile(&data, "sand", "2", &work.path().join("sand"));
    // The tile and its 3×3 check image.
    let check = files(&grass)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-3x3.png"))
        .unwrap();
    assert_eq!(read_png(&check).0, 3 * 64);
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        list.as_array().unwrap().iter().all(|a| a["kind"] == "tile"),
        "{list}"
    );

    let (a, b) = (
        grass["assets"][0].as_str().unwrap().to_owned(),
        sand["assets"][0].as_str().unwrap().to_owned(),
    );
    let cut = work.path().join("cut");
    let o = run(mintframe(&data)
        .args([
            "tileset",
            &a,
            &b,
            "--name",
            "ground",
            "--terrains",
            "grass,sand",
            "--json",
            "-o",
        ])
        .arg(&cut));
    assert!(o.status.success(), "{}", stderr(&o));

    // Tiled: the tileset's corner wangset and the sample map, through the `tiled` crate.
    let mut loader = tiled::Loader::new();
    let ts = loader.load_tsx_tileset(cut.join("ground.tsx")).unwrap();
    assert_eq!((ts.tile_width, ts.tilecount, ts.columns), (64, 16, 4));
    assert_eq!(ts.image.as_ref().unwrap().width, 256);
    let ws = &ts.wang_sets[0];
    assert!(matches!(ws.wang_set_type, tiled::WangSetType::Corner));
    let names: Vec<&str> = ws.wang_colors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["grass", "sand"]);
    let corners: Value =
        serde_json::from_str(&fs::read_to_string(cut.join("ground.corners.json")).unwrap())
            .unwrap();
    // Tiled lists corners clockwise from the top right: [_, TR, _, BR, _, BL, _, TL].
    let wang = |id: u32| ws.wang_tiles[&id].wang_id.0;
    for t in corners["tiles"].as_array().unwrap() {
        let i = t["index"].as_u64().unwrap() as u32;
        let c: Vec<u8> = t["corners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8 + 1)
            .collect();
        let w = wang(i);
        assert_eq!(
            [w[7], w[1], w[5], w[3]],
            [c[0], c[1], c[2], c[3]],
            "tile {i}"
        );
    }
    let map = loader.load_tmx_map(cut.join("ground.tmx")).unwrap();
    assert_eq!((map.width, map.height), (8, 8));
    let layer = match map.get_layer(0).unwrap().layer_type() {
        tiled::LayerType::Tiles(tiled::TileLayer::Finite(l)) => l,
        _ => panic!("not a finite tile layer"),
    };
    let id_at = |x: i32, y: i32| layer.get_tile(x, y).unwrap().id();
    let mut used = std::collections::HashSet::new();
    for y in 0..8 {
        for x in 0..8 {
            used.insert(id_at(x, y));
            // Neighbours agree on the corners they share: the map has no broken joins.
            if x < 7 {
                let (l, r) = (wang(id_at(x, y)), wang(id_at(x + 1, y)));
                assert_eq!((l[1], l[3]), (r[7], r[5]), "({x},{y}) | ({},{y})", x + 1);
            }
            if y < 7 {
                let (t, b) = (wang(id_at(x, y)), wang(id_at(x, y + 1)));
                assert_eq!((t[5], t[3]), (b[7], b[1]), "({x},{y}) over ({x},{})", y + 1);
            }
        }
    }
    assert_eq!(used.len(), 16, "the sample map shows every transition");
    // The JSON map holds the same cells.
    let tmj: Value =
        serde_json::from_str(&fs::read_to_string(cut.join("ground.tmj")).unwrap()).unwrap();
    let data_gids: Vec<u32> = tmj["layers"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(data_gids[9], id_at(1, 1) + 1);
    assert_eq!(tmj["tilesets"][0]["source"], "ground.tsx");

    // Godot: the TileSet through a Godot resource parser; a corner terrain set whose peering
    // bits are the tiles' corners, and the terrains before the source (Godot resets the bits
    // otherwise).
    let o = Command::new("node")
        .arg(workspace_root().join("tests/js/read-export.cjs"))
        .args(["godot", cut.join("ground.tres").to_str().unwrap()])
        .current_dir(workspace_root().join("tests/js"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tres: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(tres["header"]["resourceType"], "TileSet");
    let res = &tres["resource"]["properties"];
    assert_eq!(res["terrain_set_0/mode"], 1, "{res}");
    assert_eq!(res["terrain_set_0/terrain_1/name"], "sand");
    let src = &tres["subResources"][0]["properties"];
    for t in corners["tiles"].as_array().unwrap() {
        let i = t["index"].as_u64().unwrap();
        let key = |bit: &str| format!("{}:{}/0/terrains_peering_bit/{bit}", i % 4, i / 4);
        let c = &t["corners"];
        assert_eq!(src[key("top_left_corner")], c[0], "tile {i}");
        assert_eq!(src[key("top_right_corner")], c[1], "tile {i}");
        assert_eq!(src[key("bottom_left_corner")], c[2], "tile {i}");
        assert_eq!(src[key("bottom_right_corner")], c[3], "tile {i}");
    }
    let text = fs::read_to_string(cut.join("ground.tres")).unwrap();
    assert!(text.find("terrain_set_0/mode").unwrap() < text.find("sources/0").unwrap());

    // Seams painted by the model: only inside each tile; every edge, and so every join, is
    // the cut tileset's pixel for pixel.
    let painted = work.path().join("painted");
    let o = run(mintframe(&data)
        .args([
            "tileset",
            &a,
            &b,
            "--name",
            "ground",
            "--inpaint",
            "tiny-sd",
            "--steps",
            "2",
            "-o",
        ])
        .arg(&painted));
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, _, plain) = read_png(&cut.join("ground.png"));
    let (_, _, seams) = read_png(&painted.join("ground.png"));
    let mut inside_changed = 0;
    for y in 0..w {
        for x in 0..w {
            let k = ((y * w + x) * 4) as usize;
            let (tx, ty) = (x % 64, y % 64);
            let edge = tx < 4 || ty < 4 || tx >= 60 || ty >= 60;
            if edge {
                assert_eq!(
                    plain[k..k + 4],
                    seams[k..k + 4],
                    "edge pixel ({x},{y}) moved"
                );
            } else if plain[k..k + 4] != seams[k..k + 4] {
                inside_changed += 1;
            }
        }
    }
    assert!(inside_changed > 0, "the seams were not repainted");
}

#[test]
fn tilesets_refuse_terrains_of_different_sizes_and_names_that_leave_their_folder() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let write = |name: &str, w: u32, h: u32| {
        let p = work.path().join(name);
        let mut enc = png::Encoder::new(fs::File::create(&p).unwrap(), w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.write_header()
            .unwrap()
            .write_image_data(&vec![200; (w * h * 4) as usize])
            .unwrap();
        p
    };
    let a = write("a.png", 32, 32);
    let b = write("b.png", 32, 48);
    let o = run(mintframe(&data).args(["tileset"]).arg(&a).arg(&b));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("32×32 and 32×48") && e.contains("same square size"),
        "{e}"
    );
    let c = write("c.png", 32, 32);
    let o = run(mintframe(&data)
        .args(["tileset"])
        .arg(&a)
        .arg(&c)
        .args(["--name", "../up"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("tileset name \"../up\""),
        "{}",
        stderr(&o)
    );
    let o = run(mintframe(&data)
        .args(["tileset"])
        .arg(&a)
        .arg(&c)
        .args(["--terrains", "grass"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("two names"), "{}", stderr(&o));
}
