//! The built-in offline model (`mintframe-sprites`) follows prompts, judged by
//! `mintframe_tests::sprite_checker`, which shares no code with the Python that drew the model's
//! training sprites, through the CLI a new user runs first: no model named, nothing downloaded.

use std::path::Path;

use mintframe_tests::sprite_checker::{self, Kind};
use mintframe_tests::{mintframe, run, stderr, stdout};
use serde_json::Value;

/// What the checker makes of `generate PROMPT` over 20 seeds: (kind, colour name) per image.
fn draw(
    data: &Path,
    out: &Path,
    prompt: &str,
    model: Option<&str>,
) -> Vec<(Option<Kind>, Option<&'static str>)> {
    let mut cmd = mintframe(data);
    cmd.args([
        "generate", prompt, "--seed", "100", "--batch", "20", "--json", "-o",
    ])
    .arg(out);
    if let Some(m) = model {
        cmd.args(["-m", m]);
    }
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    let record: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let mut pngs: Vec<_> = std::fs::read_dir(out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 20, "{record}");
    pngs.iter()
        .map(|p| {
            let (w, h, rgb) = sprite_checker::read_rgb(p);
            let img = sprite_checker::Image {
                width: w,
                height: h,
                rgb: &rgb,
            };
            match sprite_checker::check(&img) {
                Some((k, hue)) => (Some(k), hue.map(sprite_checker::hue_name)),
                None => (None, None),
            }
        })
        .collect()
}

#[test]
fn a_fresh_install_draws_red_and_blue_potions_that_a_separate_checker_recognises() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    for colour in ["red", "blue"] {
        let out = work.path().join(colour);
        let got = draw(&data, &out, &format!("a {colour} potion"), None);
        let potions = got.iter().filter(|(k, _)| *k == Some(Kind::Potion)).count();
        let hues = got.iter().filter(|(_, c)| *c == Some(colour)).count();
        eprintln!("a {colour} potion: {potions}/20 potions, {hues}/20 {colour}: {got:?}");
        assert!(
            potions >= 16,
            "only {potions}/20 look like potions: {got:?}"
        );
        assert!(hues >= 18, "only {hues}/20 are mostly {colour}: {got:?}");
    }
    // The images came from the built-in model, which the recipe names.
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let first = list.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = run(mintframe(&data).args(["library", "show", &first, "--json"]));
    let asset: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(asset["recipe"]["model_id"], "mintframe-sprites");
}

/// The same judge on a model that cannot draw: the tiny random model's "potions" are not
/// potions, so the checker's verdict above means something.
#[test]
fn the_checker_finds_no_potions_in_the_tiny_random_models_noise() {
    let work = tempfile::tempdir().unwrap();
    let got = draw(
        &work.path().join("data"),
        &work.path().join("out"),
        "a red potion",
        Some("tiny-sd"),
    );
    let potions = got.iter().filter(|(k, _)| *k == Some(Kind::Potion)).count();
    eprintln!("tiny-sd, a red potion: {potions}/20 potions: {got:?}");
    assert!(
        potions <= 6,
        "{potions}/20 noise images taken for potions: {got:?}"
    );
}
