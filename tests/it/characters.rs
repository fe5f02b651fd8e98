//! `mintframe character`: one command from a prompt to a 4-direction × 8-frame walk pack with the
//! offline default model, read back by the engines' own parsers; its recipe makes it again byte
//! for byte; a re-roll changes one frame and nothing else; bad input fails before anything is
//! stored.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mintframe_tests::{mintframe, run, stderr, stdout, workspace_root};
use serde_json::Value;

fn node(args: &[&str]) -> Value {
    let o = Command::new("node")
        .arg(workspace_root().join("tests/js/read-export.cjs"))
        .args(args)
        .current_dir(workspace_root().join("tests/js"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// Runs `character` with `args` (few steps: the test is about the pack, not the drawing) and
/// returns the output folder's JSON record.
fn character(data: &Path, out: &Path, args: &[&str]) -> Value {
    let o = run(mintframe(data)
        .arg("character")
        .args(args)
        .args(["--steps", "6", "--json", "-o"])
        .arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn frames(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.contains("-walk_") && n.ends_with(".png")
        })
        .map(|p: PathBuf| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn one_command_makes_a_walk_pack_engines_read_whose_recipe_remakes_it_and_a_reroll_changes_one_frame()
 {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let out = work.path().join("pack");
    let rec = character(
        &data,
        &out,
        &[
            "a red slime",
            "--view",
            "topdown",
            "--directions",
            "4",
            "--animations",
            "walk",
            "--frames",
            "8",
            "--size",
            "64",
            "--seed",
            "11",
            "--name",
            "hero",
        ],
    );
    let pack_id = rec["assets"][0].as_str().unwrap().to_owned();

    // The recipe: four rows of eight frames, E drawn as W mirrored, every frame hashed.
    let recipe: Value =
        serde_json::from_str(&fs::read_to_string(out.join("hero.pack.json")).unwrap()).unwrap();
    assert_eq!(recipe["model_id"], "mintframe-sprites");
    let rows = recipe["rows"].as_array().unwrap();
    let facings: Vec<&str> = rows.iter().map(|r| r["facing"].as_str().unwrap()).collect();
    assert_eq!(facings, ["s", "w", "e", "n"]);
    assert_eq!(rows[2]["mirror_of"], "w");
    assert!(
        rows.iter()
            .all(|r| r["frames"].as_array().unwrap().len() == 8)
    );
    assert_eq!(recipe["palette"].as_array().unwrap().len(), 16);

    // The consistency report, beside the pack: registration leaves no drift.
    let report = &rec["consistency"];
    assert_eq!(report["anchor_drift_after_px"], 0, "{report}");
    for key in [
        "palette_distance_mean",
        "silhouette_iou_mean",
        "row_palette_distance_max",
    ] {
        assert!(report[key].as_f64().is_some(), "{key}: {report}");
    }
    assert!(out.join("hero.consistency.json").is_file());

    // Engine-ready: the .aseprite through aseprite-loader (32 frames at 100 ms, one tag per
    // facing), the Aseprite JSON through Phaser's hash parser, Godot's SpriteFrames through a
    // Godot resource parser.
    let ase_bytes = fs::read(out.join("hero.aseprite")).unwrap();
    let ase = aseprite_loader::loader::AsepriteFile::load(&ase_bytes).unwrap();
    assert_eq!(ase.frames().len(), 32);
    assert!(ase.frames().iter().all(|f| f.duration == 100));
    let tags: Vec<String> = ase.tags().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(tags, ["walk_down", "walk_left", "walk_right", "walk_up"]);
    let hash = node(&["phaser-hash", out.join("hero.json").to_str().unwrap()]);
    assert_eq!(hash["frames"].as_object().unwrap().len(), 32, "{hash}");
    let tres = node(&["godot", out.join("hero.tres").to_str().unwrap()]);
    assert_eq!(tres["header"]["resourceType"], "SpriteFrames", "{tres}");
    let anims = tres["resource"]["properties"]["animations"]
        .as_array()
        .unwrap();
    assert_eq!(anims.len(), 4);
    assert_eq!(tres["subResources"].as_array().unwrap().len(), 32);

    // Mint-ready: a poster and an animated preview.
    let poster = image_size(&out.join("hero.poster.png"));
    assert_eq!(poster, (256, 256));
    assert!(
        fs::read(out.join("hero.walk.gif"))
            .unwrap()
            .starts_with(b"GIF89a")
    );

    // And mints as one token: the poster as its image, the walk preview as its animation.
    let o = run(mintframe(&data)
        .args([
            "publish",
            "collection",
            &pack_id,
            "--name",
            "Hero",
            "--description",
            "a hero",
        ])
        .args(["--check", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["findings"].as_array().map(Vec::len), Some(0), "{plan}");
    let staged = Path::new(plan["media_car"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_owned();
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(staged.join("metadata/0")).unwrap()).unwrap();
    assert!(
        meta["image"].as_str().unwrap().ends_with("/0.png"),
        "{meta}"
    );
    assert!(
        meta["animation_url"].as_str().unwrap().ends_with("/0.gif"),
        "{meta}"
    );
    assert_eq!(
        fs::read(staged.join("media/0.png")).unwrap(),
        fs::read(out.join("hero.poster.png")).unwrap()
    );
    assert_eq!(
        fs::read(staged.join("media/0.gif")).unwrap(),
        fs::read(out.join("hero.walk.gif")).unwrap()
    );

    // Every frame's recipe makes it again, byte for byte.
    let first = frames(&out);
    assert_eq!(first.len(), 32);
    for (i, row) in rows.iter().enumerate() {
        for f in row["frames"].as_array().unwrap() {
            let k = f["index"].as_u64().unwrap() as usize;
            let want = f["sha256"].as_str().unwrap();
            let name = &first[i_for(&first, row["facing"].as_str().unwrap(), k)].1;
            assert_eq!(sha(name), want, "row {i} frame {k}");
        }
    }
    let again = work.path().join("again");
    let o = run(mintframe(&data)
        .args(["character", "--recipe"])
        .arg(out.join("hero.pack.json"))
        .args(["--json", "-o"])
        .arg(&again));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(frames(&again) == first, "the recipe made other frames");
    assert_eq!(
        fs::read(again.join("hero.png")).unwrap(),
        fs::read(out.join("hero.png")).unwrap()
    );

    // A re-roll of one frame: that frame changes, every other stays. The frame is one the model
    // drew something in (an empty frame may stay empty, which would prove nothing).
    let k = (0..8)
        .find(|k| {
            let png = &first[i_for(&first, "s", *k)].1;
            pixels(png).chunks_exact(4).any(|p| p[3] >= 128)
        })
        .expect("the down row has a frame with something in it");
    let target = format!("walk:s:{k}");
    let rerolled = work.path().join("rerolled");
    let o = run(mintframe(&data)
        .args([
            "character",
            "--from",
            &pack_id,
            "--reroll",
            &target,
            "--json",
            "-o",
        ])
        .arg(&rerolled));
    assert!(o.status.success(), "{}", stderr(&o));
    let after = frames(&rerolled);
    let changed: Vec<&str> = first
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert!(
        changed == [format!("hero-walk_down-{k}.png")],
        "a re-roll of {target} changed {changed:?}"
    );
    // A mirrored row is its source's: re-rolling it is refused with the row to re-roll instead.
    let o = run(mintframe(&data).args(["character", "--from", &pack_id, "--reroll", "walk:e:1"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("that row is w mirrored; re-roll walk w"),
        "{}",
        stderr(&o)
    );
}

fn write_png(path: &Path, w: u32, h: u32, rgba: &[u8]) {
    let f = fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(png::ColorType::Rgba);
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(rgba).unwrap();
}

fn facing_frames(dir: &Path, stem: &str, facing: &str) -> Vec<Vec<u8>> {
    (0..4)
        .map(|k| fs::read(dir.join(format!("{stem}-idle_{facing}-{k}.png"))).unwrap())
        .collect()
}

/// The pack's own first frame as the reference (attention and chaining), then a picture given
/// as the reference: the recipe says which rows kept to which picture, a re-roll of the very
/// frame that made the reference changes that frame alone, the picture travels with the pack
/// and its bundle, and the published recipe names no folder of the maker's.
#[test]
fn boards_keep_to_a_reference_by_attention_and_chaining_and_a_reroll_keeps_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let base = [
        "a blue knight",
        "--view",
        "topdown",
        "--directions",
        "4",
        "--animations",
        "idle",
        "--frames",
        "4",
        "--size",
        "32",
        "--seed",
        "5",
        "--name",
        "kn",
    ];
    let plain = work.path().join("plain");
    character(&data, &plain, &base);
    let out = work.path().join("kept");
    let rec = character(
        &data,
        &out,
        &[
            &base[..],
            &["--reference-attention", "on", "--chain", "0.5"],
        ]
        .concat(),
    );
    let pack_id = rec["assets"][0].as_str().unwrap().to_owned();
    let recipe: Value =
        serde_json::from_str(&fs::read_to_string(out.join("kn.pack.json")).unwrap()).unwrap();
    assert_eq!(recipe["spec"]["reference_attention"], true);
    let rows = recipe["rows"].as_array().unwrap();
    let stored = sha(&pixels(&fs::read(out.join("kn.reference.png")).unwrap())
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect::<Vec<u8>>());
    // s drew the reference; w and n kept to it (e is w mirrored).
    let refs: Vec<&Value> = rows.iter().map(|r| &r["reference"]).collect();
    assert_eq!(refs[0], &Value::Null);
    assert_eq!(refs[1].as_str(), Some(stored.as_str()), "{recipe}");
    assert_eq!(refs[3].as_str(), Some(stored.as_str()));
    assert_eq!(rows[1]["strength"].as_f64(), Some(0.5));
    assert_eq!(rows[0]["strength"].as_f64(), Some(0.8));
    for facing in ["left", "up"] {
        assert_ne!(
            facing_frames(&out, "kn", facing),
            facing_frames(&plain, "kn", facing),
            "the reference changed nothing in the {facing} row"
        );
    }

    // Drawing again the frame the reference came from changes it and nothing else.
    let rerolled = work.path().join("rerolled");
    let o = run(mintframe(&data)
        .args([
            "character",
            "--from",
            &pack_id,
            "--reroll",
            "idle:s:0",
            "--json",
            "-o",
        ])
        .arg(&rerolled));
    assert!(o.status.success(), "{}", stderr(&o));
    for facing in ["down", "left", "right", "up"] {
        let (a, b) = (
            facing_frames(&out, "kn", facing),
            facing_frames(&rerolled, "kn", facing),
        );
        for k in 0..4 {
            assert_eq!(
                a[k] != b[k],
                facing == "down" && k == 0,
                "{facing} frame {k} after re-rolling idle:s:0"
            );
        }
    }

    // A picture given as the reference: every drawn row keeps to it, chained at 0.6.
    let picture = work.path().join("hero-ref.png");
    fs::copy(out.join("kn-idle_down-1.png"), &picture).unwrap();
    let given = work.path().join("given");
    let rec = character(
        &data,
        &given,
        &[
            "a blue knight",
            "--animations",
            "idle",
            "--frames",
            "4",
            "--size",
            "32",
            "--seed",
            "9",
            "--name",
            "given",
            "--reference",
            picture.to_str().unwrap(),
        ],
    );
    let recipe: Value =
        serde_json::from_str(&fs::read_to_string(given.join("given.pack.json")).unwrap()).unwrap();
    let want = recipe["spec"]["reference_sha256"].as_str().unwrap();
    for r in recipe["rows"].as_array().unwrap() {
        if r["mirror_of"].is_null() {
            assert_eq!(r["reference"].as_str(), Some(want), "{r}");
            assert_eq!(r["strength"].as_f64(), Some(0.6), "{r}");
        }
    }
    // The pack mints with its game bundle under the media folder's CID, its recipe cut to
    // file names.
    let id = rec["assets"][0].as_str().unwrap();
    let o = run(mintframe(&data)
        .args([
            "publish",
            "collection",
            id,
            "--name",
            "G",
            "--description",
            "g",
        ])
        .args(["--check", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let staged = Path::new(plan["media_car"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_owned();
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(staged.join("metadata/0")).unwrap()).unwrap();
    let media_cid = plan["media_cid"].as_str().unwrap();
    assert_eq!(meta["bundle"], format!("ipfs://{media_cid}/0/"), "{meta}");
    for f in [
        "given.png",
        "given.aseprite",
        "given.tres",
        "given.reference.png",
        "given-idle_down-0.png",
    ] {
        assert!(
            staged.join("media/0").join(f).is_file(),
            "{f} not in the bundle"
        );
        assert!(
            meta["bundle_files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == f),
            "{f}: {meta}"
        );
    }
    assert_eq!(
        fs::read(staged.join("media/0/given.png")).unwrap(),
        fs::read(given.join("given.png")).unwrap()
    );
    let published = fs::read_to_string(staged.join("media/0/given.pack.json")).unwrap();
    assert!(
        !published.contains(work.path().to_str().unwrap()),
        "{published}"
    );
    let published: Value = serde_json::from_str(&published).unwrap();
    assert_eq!(published["spec"]["reference"], "hero-ref.png");
}

/// Index into the sorted frame list of the frame `k` of `facing`'s row.
fn i_for(frames: &[(String, Vec<u8>)], facing: &str, k: usize) -> usize {
    let dir = match facing {
        "s" => "down",
        "w" => "left",
        "e" => "right",
        _ => "up",
    };
    frames
        .iter()
        .position(|(n, _)| n.ends_with(&format!("-walk_{dir}-{k}.png")))
        .unwrap()
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A PNG's pixels (its text chunks, which name files and hashes, left out).
fn pixels(png_bytes: &[u8]) -> Vec<u8> {
    let mut r = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

fn image_size(p: &Path) -> (u32, u32) {
    let d = png::Decoder::new(std::io::BufReader::new(fs::File::open(p).unwrap()));
    let r = d.read_info().unwrap();
    (r.info().width, r.info().height)
}

#[test]
fn bad_directions_templates_and_rerolls_fail_before_anything_is_stored() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let fail = |args: &[&str], says: &str| {
        let o = run(mintframe(&data).arg("character").args(args));
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(says), "{args:?}: {e}");
    };
    fail(
        &["a knight", "--directions", "3"],
        "3 directions: use 4 or 8",
    );
    fail(
        &["a knight", "--view", "topdown", "--directions", "6"],
        "use 4 or 8",
    );
    fail(
        &["a knight", "--frames", "40"],
        "--frames 40 is out of range",
    );
    fail(
        &["a knight", "--reroll", "walk:e:1"],
        "--reroll needs --from",
    );
    fail(&["a knight", "--size", "48"], "must divide one another");
    let odd = work.path().join("odd.png");
    write_png(&odd, 40, 40, &[200; 40 * 40 * 4]);
    fail(
        &[
            "a knight",
            "--size",
            "64",
            "--reference",
            odd.to_str().unwrap(),
        ],
        "is 40×40: give a picture of the sprite's size (64×64) or of the generation size (32×32)",
    );
    let not_png = work.path().join("not.png");
    fs::write(&not_png, b"not a picture").unwrap();
    fail(
        &["a knight", "--reference", not_png.to_str().unwrap()],
        "not.png",
    );
    fail(
        &["a knight", "--reference", "no-such-asset"],
        "reference no-such-asset (a PNG file or a library asset id) was not found",
    );
    fail(
        &["a knight", "--style-fidelity", "1.5"],
        "--style-fidelity 1.5 is out of range",
    );
    fail(&["a knight", "--chain", "0"], "--chain 0 is out of range");

    let zero = work.path().join("walk-zero.json");
    fs::write(
        &zero,
        r#"{"animation":"walk","view":"topdown","fps":10,"looped":true,"facings":[{"facing":"s","frames":[]}]}"#,
    )
    .unwrap();
    fail(
        &["a knight", "--template", zero.to_str().unwrap()],
        "has no frames",
    );
    let mut joints = vec!["[0.5, 0.5]"; 18];
    joints[10] = "[0.5, 1.25]";
    let far = work.path().join("walk-far.json");
    fs::write(
        &far,
        format!(
            r#"{{"animation":"walk","view":"topdown","fps":10,"looped":true,"facings":[{{"facing":"s","frames":[{{"joints":[{}]}}]}}]}}"#,
            joints.join(",")
        ),
    )
    .unwrap();
    fail(
        &["a knight", "--template", far.to_str().unwrap()],
        "joint right_ankle is at (0.5, 1.25), outside the frame",
    );
    let mut missing = vec!["[0.5, 0.5]"; 18];
    missing.pop();
    let short = work.path().join("walk-short.json");
    fs::write(
        &short,
        format!(
            r#"{{"animation":"walk","view":"topdown","fps":10,"looped":true,"facings":[{{"facing":"s","frames":[{{"joints":[{}]}}]}}]}}"#,
            missing.join(",")
        ),
    )
    .unwrap();
    fail(
        &["a knight", "--template", short.to_str().unwrap()],
        "a pose has 17 joints but the OpenPose body format has 18",
    );
    // A template with the facing the pack needs missing.
    fail(
        &[
            "a knight",
            "--template",
            short.to_str().unwrap(),
            "--directions",
            "8",
        ],
        "joints",
    );
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
}

/// The SD 1.5-shaped ControlNet fixture has `tiny-sd`'s layout (and diffusers made it), so the
/// CLI can steer the built-in random model with it.
fn fixture_controlnet() -> PathBuf {
    workspace_root().join("tests/fixtures/controlnet/sd15")
}

fn generate(data: &Path, out: &Path, extra: &[&str]) -> (Value, Vec<u8>) {
    let o = run(mintframe(data)
        .args([
            "generate", "a knight", "-m", "tiny-sd", "--seed", "3", "--steps", "4", "--json", "-o",
        ])
        .arg(out)
        .args(extra));
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    let png = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    (
        serde_json::from_str(&stdout(&o)).unwrap(),
        fs::read(png).unwrap(),
    )
}

#[test]
fn generate_follows_a_controlnet_given_as_a_folder_or_an_a1111_single_file_and_records_it() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // A pose JSON, drawn as the OpenPose annotator draws it at the generation's size.
    let template: Value = serde_json::from_str(
        &fs::read_to_string(workspace_root().join("assets/poses/topdown-walk.json")).unwrap(),
    )
    .unwrap();
    let pose = work.path().join("pose.json");
    fs::write(&pose, template["facings"][0]["frames"][2].to_string()).unwrap();
    let net = fixture_controlnet();
    let (_, plain) = generate(&data, &work.path().join("plain"), &[]);
    let (rec, posed) = generate(
        &data,
        &work.path().join("posed"),
        &[
            "--controlnet",
            net.to_str().unwrap(),
            "--control",
            pose.to_str().unwrap(),
        ],
    );
    assert!(
        pixels(&plain) != pixels(&posed),
        "the ControlNet changed nothing"
    );
    let o = run(mintframe(&data).args([
        "library",
        "show",
        rec["outputs"][0].as_str().unwrap(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = &shown["recipe"]["controls"][0];
    assert_eq!(c["kind"], "pose", "{shown}");
    assert_eq!(c["controlnet"]["sha256"].as_str().unwrap().len(), 64);

    // The same weights under the original names (control_model.input_hint_block…), as one
    // file with its config beside it, draw the same image.
    let single = work.path().join("openpose.safetensors");
    fs::copy(
        workspace_root().join("tests/fixtures/controlnet/sd15_single.safetensors"),
        &single,
    )
    .unwrap();
    fs::copy(
        net.join("config.json"),
        work.path().join("openpose.config.json"),
    )
    .unwrap();
    let (_, again) = generate(
        &data,
        &work.path().join("single"),
        &[
            "--controlnet",
            single.to_str().unwrap(),
            "--control",
            pose.to_str().unwrap(),
        ],
    );
    assert!(
        pixels(&again) == pixels(&posed),
        "the single file and the folder draw different pixels"
    );

    // Canny edges from any image of the generation's size.
    // Two at once (pose and Canny edges), each with its own weight and share of the steps.
    let plain_png = work
        .path()
        .join("plain")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (rec, edged) = generate(
        &data,
        &work.path().join("canny"),
        &[
            "--controlnet",
            net.to_str().unwrap(),
            "--control",
            pose.to_str().unwrap(),
            "--controlnet",
            net.to_str().unwrap(),
            "--control",
            plain_png.to_str().unwrap(),
            "--control-kind",
            "pose,canny",
            "--control-weight",
            "0.5,1.25",
            "--control-end",
            "0.5,1.0",
        ],
    );
    assert!(
        pixels(&edged) != pixels(&plain),
        "the Canny condition changed nothing"
    );
    let o = run(mintframe(&data).args([
        "library",
        "show",
        rec["outputs"][0].as_str().unwrap(),
        "--json",
    ]));
    let shown: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = shown["recipe"]["controls"].as_array().unwrap();
    let got: Vec<(&str, f64, f64)> = c
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap(),
                c["weight"].as_f64().unwrap(),
                c["end"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("pose", 0.5, 0.5), ("canny", 1.25, 1.0)], "{shown}");
}

#[test]
fn a_controlnet_for_another_base_or_a_condition_of_another_size_is_refused_and_nothing_stored() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let fail = |extra: &[&str], says: &str| {
        let o = run(mintframe(&data)
            .args(["generate", "a knight", "-m", "tiny-sd", "--steps", "2"])
            .args(extra));
        assert!(!o.status.success(), "{extra:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(says), "{extra:?}: {e}");
    };
    let small = work.path().join("small.png");
    let mut enc = png::Encoder::new(fs::File::create(&small).unwrap(), 32, 32);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header()
        .unwrap()
        .write_image_data(&[90u8; 32 * 32 * 3])
        .unwrap();
    let net = fixture_controlnet();
    fail(
        &[
            "--controlnet",
            net.to_str().unwrap(),
            "--control",
            small.to_str().unwrap(),
            "--control-kind",
            "canny",
        ],
        "is 32×32 but the generation is 64×64",
    );
    let xl = workspace_root().join("tests/fixtures/controlnet/sdxl");
    let pose = work.path().join("pose.json");
    let template: Value = serde_json::from_str(
        &fs::read_to_string(workspace_root().join("assets/poses/side-idle.json")).unwrap(),
    )
    .unwrap();
    fs::write(&pose, template["facings"][0]["frames"][0].to_string()).unwrap();
    fail(
        &[
            "--controlnet",
            xl.to_str().unwrap(),
            "--control",
            pose.to_str().unwrap(),
        ],
        "is for SDXL",
    );
    fail(
        &[
            "--controlnet",
            net.to_str().unwrap(),
            "--control",
            pose.to_str().unwrap(),
            "--control-weight",
            "1.0,0.5",
        ],
        "--control-weight gives 2 values for 1 conditions: give one for all or one each",
    );
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
}

#[test]
fn a_pack_follows_an_openpose_controlnet_when_given_one() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let args = [
        "a knight",
        "-m",
        "tiny-sd",
        "--view",
        "side",
        "--animations",
        "idle",
        "--frames",
        "4",
        "--size",
        "32",
        "--seed",
        "2",
    ];
    let plain = character(&data, &work.path().join("plain"), &args);
    let net = fixture_controlnet();
    let mut with = args.to_vec();
    with.extend(["--controlnet", net.to_str().unwrap()]);
    let posed = character(&data, &work.path().join("posed"), &with);
    assert!(plain["assets"] != posed["assets"]);
    let recipe = |dir: &str| -> Value {
        let p = fs::read_dir(work.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".pack.json"))
            .unwrap();
        serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b) = (recipe("plain"), recipe("posed"));
    assert!(a["controlnet"].is_null());
    assert_eq!(b["controlnet"]["sha256"].as_str().unwrap().len(), 64);
    let shas = |r: &Value| -> Vec<String> {
        r["rows"][0]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["sha256"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_ne!(shas(&a), shas(&b), "the skeletons changed no frame");
}

#[test]
fn a_pack_draws_with_lcm_and_the_tiny_decoder_and_its_recipe_says_so() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let args = [
        "a knight",
        "-m",
        "tiny-sd",
        "--view",
        "side",
        "--animations",
        "idle",
        "--frames",
        "4",
        "--size",
        "32",
        "--seed",
        "2",
    ];
    let plain = character(&data, &work.path().join("plain"), &args);
    let mut fast = args.to_vec();
    fast.extend([
        "--scheduler",
        "lcm",
        "--guidance",
        "1.5",
        "--decoder",
        "tiny",
    ]);
    let drafted = character(&data, &work.path().join("fast"), &fast);
    assert!(plain["assets"] != drafted["assets"]);
    let pack = fs::read_dir(work.path().join("fast"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".pack.json"))
        .unwrap();
    let text = fs::read_to_string(pack).unwrap();
    let recipe: Value = serde_json::from_str(&text).unwrap();
    let spec = recipe.get("spec").unwrap_or(&recipe);
    assert!(
        text.contains("\"decoder\":\"tiny\"") || spec["decoder"] == "tiny",
        "{text}"
    );
    assert!(text.contains("\"lcm\""), "{text}");
}
