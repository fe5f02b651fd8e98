//! LoRA training from the command line, on the built-in tiny model: a captioned folder to a
//! LoRA that `generate --lora NAME` uses, a run's status, and the bad inputs training meets.

use std::fs;
use std::path::Path;

use mintframe_tests::{mintframe, run, stderr, stdout};
use serde_json::Value;

fn solid_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        let px: Vec<u8> = (0..w * h)
            .flat_map(|_| [rgb[0], rgb[1], rgb[2], 255])
            .collect();
        wr.write_image_data(&px).unwrap();
    }
    out
}

/// Three red images (one not square, so it gets its own bucket) with a caption each.
fn dataset(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for (i, (w, h, c)) in [
        (64, 64, [230, 20, 30]),
        (64, 64, [200, 10, 10]),
        (96, 64, [250, 60, 40]),
    ]
    .iter()
    .enumerate()
    {
        fs::write(dir.join(format!("red{i}.png")), solid_png(*w, *h, *c)).unwrap();
        fs::write(dir.join(format!("red{i}.txt")), "a red potion\n").unwrap();
    }
}

fn train(data: &Path, args: &[&str]) -> std::process::Output {
    run(mintframe(data).args(["train", "lora"]).args(args).args([
        "--resolution",
        "64",
        "--lr",
        "1e-3",
        "--sample-steps",
        "2",
    ]))
}

#[test]
fn a_lora_trained_on_a_captioned_folder_is_used_by_generate_by_name() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let imgs = work.path().join("imgs");
    dataset(&imgs);
    let o = train(
        &data,
        &[
            imgs.to_str().unwrap(),
            "--name",
            "redstyle",
            "--trigger",
            "mfred",
            "--steps",
            "6",
            "--checkpoint-every",
            "3",
            "--flip",
            "--sample",
            "a red potion",
            "--seed",
            "5",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let status: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(status["job"]["state"], "succeeded", "{status}");
    let points = status["points"].as_array().unwrap();
    assert_eq!(points.len(), 6, "{status}");
    assert!(
        points
            .iter()
            .all(|p| p["loss"].as_f64().unwrap().is_finite())
    );
    assert_eq!(status["checkpoints"], serde_json::json!([3, 6]));
    let samples = status["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{status}");
    for s in samples {
        let f = s["files"][0].as_str().unwrap();
        assert!(fs::read(f).unwrap().starts_with(b"\x89PNG"), "{f}");
    }
    let lora = data.join("loras/redstyle.safetensors");
    assert_eq!(status["lora"].as_str().unwrap(), lora.to_str().unwrap());
    // kohya metadata and names, as other tools read them.
    let bytes = fs::read(&lora).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["__metadata__"]["ss_network_dim"], "8");
    assert_eq!(header["__metadata__"]["ss_output_name"], "redstyle");
    assert!(
        header
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("lora_unet_") && k.ends_with(".lora_up.weight")),
        "{header}"
    );

    let o = run(mintframe(&data).args(["train", "status"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("redstyle") && text.contains("step 6/6"),
        "{text}"
    );
    assert!(text.contains("checkpoints at steps 3, 6"), "{text}");

    let o = run(mintframe(&data).args([
        "generate",
        "mfred, a red potion",
        "-m",
        "tiny-sd",
        "--lora",
        "redstyle",
        "--steps",
        "2",
        "--size",
        "64x64",
        "--seed",
        "1",
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = v["outputs"][0].as_str().unwrap();
    let o = run(mintframe(&data).args(["library", "show", id, "--json"]));
    let shown = stdout(&o);
    assert!(shown.contains("redstyle.safetensors"), "{shown}");
}

#[test]
fn training_refuses_bad_datasets_and_settings_and_names_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let fail = |args: &[&str], want: &str| {
        let o = train(&data, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: {e}");
        e
    };
    let empty = work.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    fail(&[empty.to_str().unwrap(), "--name", "x"], "has no images");

    let uncaptioned = work.path().join("uncaptioned");
    fs::create_dir_all(&uncaptioned).unwrap();
    fs::write(uncaptioned.join("a.png"), solid_png(64, 64, [9, 9, 9])).unwrap();
    let e = fail(
        &[uncaptioned.to_str().unwrap(), "--name", "x"],
        "has no caption",
    );
    assert!(
        e.contains("a.txt") && e.contains("--caption-template"),
        "{e}"
    );

    let broken = work.path().join("broken");
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join("b.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    fs::write(broken.join("b.txt"), "x").unwrap();
    let e = fail(&[broken.to_str().unwrap(), "--name", "x"], "cannot be read");
    assert!(e.contains("b.png"), "{e}");

    let imgs = work.path().join("imgs");
    dataset(&imgs);
    fail(
        &[imgs.to_str().unwrap(), "--name", "x", "--rank", "0"],
        "rank must be at least 1",
    );
    fail(&[imgs.to_str().unwrap(), "--name", "../x"], "plain text");

    // A checkpoint from one run does not continue another (other captions here).
    let o = train(
        &data,
        &[
            imgs.to_str().unwrap(),
            "--name",
            "a",
            "--steps",
            "2",
            "--checkpoint-every",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = fs::read_dir(data.join("training"))
        .unwrap()
        .flat_map(|run| fs::read_dir(run.unwrap().path().join("checkpoints")).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap() == "step-000001.safetensors")
        .unwrap();
    let e = fail(
        &[
            imgs.to_str().unwrap(),
            "--name",
            "b",
            "--steps",
            "2",
            "--trigger",
            "other",
            "--resume-from",
            ckpt.to_str().unwrap(),
        ],
        "belongs to another training run",
    );
    assert!(e.contains("step-000001.safetensors"), "{e}");
    // Nothing of the refused runs was written as a LoRA.
    let loras: Vec<_> = fs::read_dir(data.join("loras"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(loras, vec!["a.safetensors"]);
}
