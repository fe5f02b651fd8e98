//! `mintframe generate` and `mintframe models` as a user runs them: the built-in tiny model from a
//! clean data folder, reproducible PNGs with their recipe, and installs from a local folder and
//! from a Hugging Face-style mirror (`HF_ENDPOINT`, which real users point at their own mirror).
//! The mirror is Python's standard `http.server` over a folder in the hub's URL layout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mintframe_tests::{Guard, free_port_with, mintframe, run, stderr, stdout, wait_until};

/// `generate` on the tiny model unless the test names another: these tests are about the
/// manager and the recipe, not about what the default model draws.
fn generate(data: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = mintframe(data);
    cmd.arg("generate").args(args);
    if !args.contains(&"-m") && !args.contains(&"--model") {
        cmd.args(["-m", "tiny-sd"]);
    }
    run(&mut cmd)
}

fn png_chunks(bytes: &[u8]) -> Vec<(String, String)> {
    // tEXt: keyword NUL text; iTXt: keyword NUL flag method NUL lang NUL translated NUL text.
    let mut out = Vec::new();
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let kind = &bytes[i + 4..i + 8];
        let data = &bytes[i + 8..i + 8 + len];
        if kind == b"tEXt" || kind == b"iTXt" {
            let nul = data.iter().position(|&b| b == 0).unwrap();
            let key = String::from_utf8_lossy(&data[..nul]).into_owned();
            let rest = if kind == b"tEXt" {
                &data[nul + 1..]
            } else {
                let mut r = &data[nul + 3..];
                for _ in 0..2 {
                    let z = r.iter().position(|&b| b == 0).unwrap();
                    r = &r[z + 1..];
                }
                r
            };
            out.push((key, String::from_utf8_lossy(rest).into_owned()));
        }
        i += 12 + len;
    }
    out
}

fn only_png(dir: &Path) -> PathBuf {
    let pngs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(pngs.len(), 1, "{pngs:?}");
    pngs[0].clone()
}

#[test]
fn tiny_model_generates_reproducible_pngs_with_their_recipe_into_the_library() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    let args = |out: &Path| -> Vec<String> {
        [
            "a red slime, pixel art",
            "--negative",
            "blurry",
            "--seed",
            "42",
            "--steps",
            "3",
            "--scheduler",
            "dpmpp_2m_karras",
            "-o",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
    };
    let args_a = args(&work.path().join("out-a"));
    let o = generate(&a, &args_a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("licence mit"), "{}", stderr(&o));
    let png_a = fs::read(only_png(&work.path().join("out-a"))).unwrap();

    // A second, clean data folder writes tiny-sd again and must give the same bytes.
    let args_b = args(&work.path().join("out-b"));
    let o = generate(&b, &args_b.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let png_b = fs::read(only_png(&work.path().join("out-b"))).unwrap();
    assert!(png_a == png_b, "same recipe, same backend: PNGs differ");

    let chunks = png_chunks(&png_a);
    let params = &chunks.iter().find(|(k, _)| k == "parameters").unwrap().1;
    assert!(
        params.starts_with("a red slime, pixel art\nNegative prompt: blurry\nSteps: 3, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: tiny-sd"),
        "{params}"
    );
    let recipe: serde_json::Value =
        serde_json::from_str(&chunks.iter().find(|(k, _)| k == "mintframe").unwrap().1).unwrap();
    assert_eq!(recipe["seed"], 42);
    assert_eq!(recipe["model_id"], "tiny-sd");

    // It is in the library, recipe and all.
    let o = run(mintframe(&a).args(["library", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["id"].as_str().unwrap();
    let o = run(mintframe(&a).args(["library", "show", id, "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(shown["recipe"], recipe);

    // Another seed, another image.
    let o = generate(
        &a,
        &[
            "a red slime, pixel art",
            "--negative",
            "blurry",
            "--seed",
            "43",
            "--steps",
            "3",
            "--scheduler",
            "dpmpp_2m_karras",
            "-o",
            &work.path().join("out-c").display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let png_c = fs::read(only_png(&work.path().join("out-c"))).unwrap();
    assert!(png_c != png_a);
}

#[test]
fn generate_refuses_bad_input_naming_the_value() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let o = generate(&data, &["x", "--size", "100x64"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("width 100 is not divisible by 8"),
        "{}",
        stderr(&o)
    );

    // A mask that is not the init image's size.
    let init = work.path().join("init.png");
    let mask = work.path().join("mask.png");
    let o = generate(
        &data,
        &["seed image", "--seed", "1", "--steps", "1", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([work.path().join("init").display().to_string()])
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    fs::copy(only_png(&work.path().join("init")), &init).unwrap();
    let o = generate(
        &data,
        &["y", "--size", "32x32", "--steps", "1", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([work.path().join("mask").display().to_string()])
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    fs::copy(only_png(&work.path().join("mask")), &mask).unwrap();
    let o = generate(
        &data,
        &[
            "z",
            "--init-image",
            init.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("32×32") || stderr(&o).contains("32x32"),
        "{}",
        stderr(&o)
    );

    let o = generate(&data, &["x", "--memory-budget", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not enough memory"), "{}", stderr(&o));

    let pickle = work.path().join("model.ckpt");
    fs::write(&pickle, b"PK\x03\x04").unwrap();
    let o = generate(&data, &["x", "--model", pickle.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("pickle"), "{}", stderr(&o));
}

/// Python's standard HTTP file server over a folder laid out as the hub's URLs.
struct Mirror {
    _server: Guard,
    url: String,
    root: PathBuf,
}

fn mirror(root: &Path) -> Mirror {
    let port = free_port_with(&[]);
    let server = Guard(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("python http.server", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Mirror {
        _server: server,
        url: format!("http://127.0.0.1:{port}"),
        root: root.to_owned(),
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else if e.file_name() != "mintframe-install.json" {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn models_pull_import_verify_remove() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");

    let o = run(mintframe(&data).args(["models", "list"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("tiny-sd"), "{text}");
    let turbo = text.lines().find(|l| l.starts_with("sdxl-turbo")).unwrap();
    assert!(
        turbo.contains("non-commercial") && turbo.contains(" no "),
        "{turbo}"
    );

    // tiny-sd is written on first use; its files and hashes are the source for the mirror.
    let o = generate(&data, &["warm up", "--steps", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tiny = data.join("models/tiny-sd");
    let record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tiny.join("mintframe-install.json")).unwrap())
            .unwrap();
    let files = record["files"].as_array().unwrap();
    let unet_sha = files
        .iter()
        .find(|f| f["path"] == "unet/diffusion_pytorch_model.safetensors")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();

    let hub = work.path().join("hub");
    copy_tree(&tiny, &hub.join("acme/tiny-sd/resolve/main"));
    let mirror = mirror(&hub);
    let manifest = |id: &str, unet: &str| {
        serde_json::json!({
            "id": id, "name": "Acme tiny", "arch": "sd1", "layout": "diffusers",
            "source": {"repo": "acme/tiny-sd", "revision": "main"},
            "files": files.iter().map(|f| {
                let path = f["path"].as_str().unwrap();
                if path == "unet/diffusion_pytorch_model.safetensors" {
                    serde_json::json!({"path": path, "sha256": unet})
                } else {
                    serde_json::json!({"path": path})
                }
            }).collect::<Vec<_>>(),
            "license": {"id": "mit", "name": "MIT", "url": "", "commercial": true, "summary": "test"},
            "defaults": {"scheduler": "euler_a", "steps": 2, "guidance": 7.5, "width": 64, "height": 64}
        })
    };
    let manifests = data.join("models/manifests");
    fs::create_dir_all(&manifests).unwrap();
    fs::write(
        manifests.join("acme.json"),
        manifest("acme", &unet_sha).to_string(),
    )
    .unwrap();
    fs::write(
        manifests.join("acme-bad.json"),
        manifest("acme-bad", &"0".repeat(64)).to_string(),
    )
    .unwrap();

    let pull = |id: &str, endpoint: &str| {
        run(mintframe(&data)
            .env("HF_ENDPOINT", endpoint)
            .args(["models", "pull", id]))
    };
    let o = pull("acme", &mirror.url);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("installed acme from acme/tiny-sd@main"),
        "{}",
        stdout(&o)
    );
    let o = run(mintframe(&data).args(["models", "verify", "acme"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = generate(&data, &["pulled", "--model", "acme", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A pinned hash the download does not have is refused and nothing is installed.
    let o = pull("acme-bad", &mirror.url);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the manifest says 0000"),
        "{}",
        stderr(&o)
    );
    let o = generate(&data, &["x", "--model", "acme-bad"]);
    assert!(stderr(&o).contains("not installed"), "{}", stderr(&o));

    // No server: a clear offline message that says what to do instead.
    let closed = free_port_with(&[]);
    let o = pull("sd15", &format!("http://127.0.0.1:{closed}"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("looks offline") && stderr(&o).contains("models import"),
        "{}",
        stderr(&o)
    );

    // Damage an installed file: verify names it.
    let unet = data.join("models/acme/unet/diffusion_pytorch_model.safetensors");
    let mut bytes = fs::read(&unet).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&unet, bytes).unwrap();
    let o = run(mintframe(&data).args(["models", "verify", "acme"]));
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("BAD  unet/diffusion_pytorch_model.safetensors"),
        "{}",
        stdout(&o)
    );

    // Import: a local folder under a new id becomes the user's model, licence unknown.
    let o = run(mintframe(&data)
        .args(["models", "import", "my-tiny"])
        .arg(mirror.root.join("acme/tiny-sd/resolve/main")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("licence: unknown (non-commercial)"),
        "{}",
        stdout(&o)
    );
    let o = generate(&data, &["imported", "--model", "my-tiny", "--steps", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A folder missing a component, and a pickle, are refused with the reason.
    let broken = work.path().join("broken");
    copy_tree(&mirror.root.join("acme/tiny-sd/resolve/main"), &broken);
    fs::remove_dir_all(broken.join("vae")).unwrap();
    let o = run(mintframe(&data)
        .args(["models", "import", "broken"])
        .arg(&broken));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("vae"), "{}", stderr(&o));
    assert!(!data.join("models/broken").exists());
    let pickle = work.path().join("model.ckpt");
    fs::write(&pickle, b"PK").unwrap();
    let o = run(mintframe(&data)
        .args(["models", "import", "pk"])
        .arg(&pickle));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("pickle"), "{}", stderr(&o));

    let o = run(mintframe(&data).args(["models", "remove", "acme"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!data.join("models/acme").exists());
    let o = run(mintframe(&data).args(["models", "remove", "../etc"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not allowed"), "{}", stderr(&o));
}

/// The preflight's estimate against the peak RSS a real-size SD 1.5 run (random weights, one
/// step, guidance on) actually reaches, in a process of its own so nothing else is counted.
#[test]
fn the_memory_preflight_is_within_25_percent_of_measured_peak_rss() {
    let bench = mintframe_tests::workspace_root().join("target/debug/examples/sd_bench");
    assert!(
        bench.is_file(),
        "{} is not built: run `cargo build -p mintframe-diffusion --example sd_bench` (scripts/test does)",
        bench.display()
    );
    for size in ["256", "384"] {
        let o = run(Command::new(&bench).args(["txt2img", size]));
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let ratio = v["ratio"].as_f64().unwrap();
        assert!(
            (0.75..=1.25).contains(&ratio),
            "{size}²: estimate {} MiB vs measured {} MiB",
            v["estimate_mib"],
            v["peak_rss_mib"]
        );
    }
}

/// LayerDiffuse arrives through the model manager as an add-on: `models import` checks its
/// decoder and attention (tiny weights in the real layouts here), `models list` shows it with
/// its licence, and a generation on a model of another base is refused before anything loads.
#[test]
fn layerdiffuse_is_an_add_on_the_manager_installs_and_a_model_of_another_base_refuses() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("d");
    let src = work.path().join("ld");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        mintframe_tests::workspace_root().join("tests/fixtures/layerdiffuse/tiny.safetensors"),
        src.join("vae_transparent_decoder.safetensors"),
    )
    .unwrap();
    let base = "diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight";
    mintframe_tests::write_safetensors(
        &src.join("layer_xl_transparent_attn.safetensors"),
        &[
            (&format!("{base}::lora::0"), vec![640, 4], vec![0.01; 2560]),
            (&format!("{base}::lora::1"), vec![4, 2048], vec![0.01; 8192]),
        ],
    );
    let o = run(mintframe(&data)
        .args(["models", "import", "layerdiffuse-sdxl"])
        .arg(&src));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mintframe(&data).args(["models", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let addon = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "layerdiffuse-sdxl" || m["manifest"]["id"] == "layerdiffuse-sdxl")
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    assert!(addon.contains("creativeml-openrail-m"), "{addon}");
    let o = run(mintframe(&data).args([
        "generate",
        "a glass potion",
        "-m",
        "tiny-sd",
        "--steps",
        "2",
        "--transparent",
        "layerdiffuse-sdxl",
    ]));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("is LayerDiffuse for sdxl but `tiny-sd` is sd1")
            && e.contains("add-on made for"),
        "{e}"
    );

    // An attention file for SD 1.x under the SDXL add-on's id: refused at import, by its file.
    let wrong = work.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::copy(
        src.join("vae_transparent_decoder.safetensors"),
        wrong.join("vae_transparent_decoder.safetensors"),
    )
    .unwrap();
    mintframe_tests::write_safetensors(
        &wrong.join("layer_xl_transparent_attn.safetensors"),
        &[
            (&format!("{base}::lora::0"), vec![640, 4], vec![0.01; 2560]),
            (&format!("{base}::lora::1"), vec![4, 768], vec![0.01; 3072]),
        ],
    );
    let o = run(mintframe(&data)
        .args(["models", "import", "layerdiffuse-sdxl"])
        .arg(&wrong));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("layer_xl_transparent_attn") && e.contains("another base model"),
        "{e}"
    );
}

fn read_rgb_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    let rgb = buf
        .chunks(channels)
        .flat_map(|px| px[..3].to_vec())
        .collect();
    (info.width, info.height, rgb)
}

#[test]
fn generate_with_latents_reproduces_diffusers_on_tiny_sd15_and_sdxl_folders() {
    // The folders, the noise and diffusers' PNGs: tests/fixtures/parity (scripts/fixtures parity).
    let fixtures = mintframe_tests::workspace_root().join("tests/fixtures/parity");
    let work = tempfile::tempdir().unwrap();
    for model in ["sd15", "sdxl"] {
        for sampler in ["ddim", "euler"] {
            let out = work.path().join(format!("{model}-{sampler}"));
            let latents = fixtures.join(format!("{model}_{sampler}_latents.safetensors"));
            let folder = fixtures.join(model);
            let o = run(mintframe(&work.path().join("data"))
                .args(["generate"])
                .arg("a knight in a red cloak holding a sword, pixel art, side view, full body")
                .args(["--negative", "blurry, lowres, watermark", "--guidance", "5"])
                .args(["--steps", "4", "--width", "96", "--height", "64"])
                .args(["--scheduler", sampler, "-m"])
                .arg(&folder)
                .arg("--latents")
                .arg(&latents)
                .arg("-o")
                .arg(&out));
            assert!(o.status.success(), "{model} {sampler}: {}", stderr(&o));
            let (w, h, ours) = read_rgb_png(&only_png(&out));
            let (tw, th, theirs) = read_rgb_png(&fixtures.join(format!("{model}_{sampler}.png")));
            assert_eq!((w, h), (tw, th));
            let mse = ours
                .iter()
                .zip(&theirs)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                / ours.len() as f64;
            let psnr = if mse == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (255.0f64.powi(2) / mse).log10()
            };
            println!("{model} {sampler}: PSNR {psnr:.1} dB against diffusers");
            assert!(psnr >= 40.0, "{model} {sampler}: PSNR {psnr:.1} dB");
        }
    }
    // Latents of another size are refused, naming both shapes and the flags to change.
    let o = run(mintframe(&work.path().join("data"))
        .args([
            "generate", "a knight", "--steps", "1", "--width", "64", "--height", "64", "-m",
        ])
        .arg(fixtures.join("sd15"))
        .arg("--latents")
        .arg(fixtures.join("sd15_ddim_latents.safetensors")));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("[1, 4, 8, 12]") && e.contains("1×4×8×8") && e.contains("--width"),
        "{e}"
    );
}

#[test]
fn the_tiny_decoder_and_lcm_draw_from_a_fresh_install_and_name_themselves_in_the_recipe() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let draw = |name: &str, extra: &[&str]| {
        let out = work.path().join(name);
        let mut args = vec![
            "a red slime",
            "--seed",
            "7",
            "--steps",
            "4",
            "--scheduler",
            "lcm",
            "-g",
            "1.5",
        ];
        args.extend_from_slice(extra);
        let out_s = out.display().to_string();
        args.extend_from_slice(&["-o", &out_s]);
        let o = generate(&data, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let png = only_png(&out);
        let chunks = png_chunks(&fs::read(&png).unwrap());
        let recipe: serde_json::Value =
            serde_json::from_str(&chunks.iter().find(|(k, _)| k == "mintframe").unwrap().1)
                .unwrap();
        (read_rgb_png(&png), recipe)
    };
    // The built-in tiny model carries its own TAESD-shaped decoder.
    let (full, full_recipe) = draw("full", &[]);
    let (tiny, tiny_recipe) = draw("tiny", &["--decoder", "tiny"]);
    assert_eq!(full_recipe["scheduler"], "lcm");
    assert!(full_recipe.get("tiny_decoder").is_none(), "{full_recipe}");
    let named = &tiny_recipe["tiny_decoder"];
    assert!(
        named["path"].as_str().unwrap().ends_with("taesd")
            && named["sha256"].as_str().unwrap().len() == 64,
        "{tiny_recipe}"
    );
    assert_eq!(
        (tiny.0, tiny.1),
        (full.0, full.1),
        "the same size either way"
    );
    assert_ne!(
        tiny.2, full.2,
        "the tiny decoder drew the same pixels as the VAE"
    );
    // The same recipe again: the same bytes.
    let (again, _) = draw("again", &["--decoder", "tiny"]);
    assert_eq!(again.2, tiny.2);

    // A model without one, and none in the models folder: refused, saying where to put it.
    let o = generate(
        &data,
        &[
            "a slime",
            "-m",
            "mintframe-sprites",
            "--decoder",
            "tiny",
            "--steps",
            "2",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("madebyollin/taesd") && e.contains("--tiny-decoder"),
        "{e}"
    );
    // LCM asked for more steps than its distilled schedule holds: refused by name.
    let o = generate(&data, &["a slime", "--scheduler", "lcm", "--steps", "60"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("LCM"), "{}", stderr(&o));
}

#[test]
fn generate_in_bf16_draws_close_to_f32_and_records_its_precision() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let draw = |name: &str, dtype: &str| {
        let out = work.path().join(name);
        let out_s = out.display().to_string();
        let o = generate(
            &data,
            &[
                "a red slime",
                "--seed",
                "3",
                "--steps",
                "3",
                "--dtype",
                dtype,
                "-o",
                &out_s,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let png = only_png(&out);
        let chunks = png_chunks(&fs::read(&png).unwrap());
        let recipe: serde_json::Value =
            serde_json::from_str(&chunks.iter().find(|(k, _)| k == "mintframe").unwrap().1)
                .unwrap();
        (read_rgb_png(&png).2, recipe)
    };
    let (f32_px, f32_recipe) = draw("f32", "f32");
    let (bf16_px, bf16_recipe) = draw("bf16", "bf16");
    assert_eq!(f32_recipe["dtype"], "f32");
    assert_eq!(bf16_recipe["dtype"], "bf16");
    // Whether this CPU ran the bf16 kernels or the portable f32 path, the picture is the
    // same drawing: every channel within a few levels on average.
    let mean_diff = f32_px
        .iter()
        .zip(&bf16_px)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / f32_px.len() as f64;
    assert!(
        mean_diff < 8.0,
        "bf16 drew another picture: mean difference {mean_diff}"
    );
}
