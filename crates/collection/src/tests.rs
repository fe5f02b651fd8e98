use super::*;

const SPEC: &str = r#"
name = "Slimes"
tokens = 40
seed = 7
prompt = "pixel art slime, {color} body, wearing {hat}, {eyes} eyes"

[[traits]]
name = "Color"
values = [
  { value = "green", weight = 60 },
  { value = "blue", weight = 30 },
  { value = "gold", weight = 5, prompt = "shiny gold" },
  { value = "purple", weight = 5 },
]

[[traits]]
name = "Hat"
values = [
  { value = "none", weight = 50 },
  { value = "cap", weight = 30 },
  { value = "wizard hat", weight = 15 },
  { value = "crown", weight = 5 },
]

[[traits]]
name = "Eyes"
values = [
  { value = "happy", weight = 40 },
  { value = "sleepy", weight = 30 },
  { value = "angry", weight = 20 },
  { value = "sparkly", weight = 9 },
  { value = "cyclops", weight = 1 },
]

[[exclude]]
traits = { Color = "gold", Hat = "none" }

[[force]]
when = { Hat = "crown" }
then = { Color = "purple" }

[[one_of_ones]]
name = "The Slime King"
traits = { Color = "gold", Hat = "crown", Eyes = "cyclops" }
prompt = "the slime king on a throne, pixel art"
"#;

#[test]
fn a_spec_draws_the_same_unique_tokens_every_time_and_keeps_its_rules() {
    let spec = CollectionSpec::parse(SPEC).expect("spec");
    let a = draw(&spec).expect("draw");
    assert_eq!(a, draw(&spec).expect("again"));
    assert_eq!(a.len(), 40);
    let dnas: HashSet<&str> = a.iter().map(|t| t.dna.as_str()).collect();
    assert_eq!(dnas.len(), 40, "every DNA unique");
    for (n, t) in a.iter().enumerate() {
        assert_eq!(t.number as usize, n);
        let get = |k: &str| {
            t.traits
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if t.one_of_one.is_none() {
            assert!(!(get("Color") == Some("gold") && get("Hat") == Some("none")));
            if get("Hat") == Some("crown") {
                assert_eq!(get("Color"), Some("purple"), "forced pair");
            }
            assert!(t.prompt.starts_with("pixel art slime, "), "{}", t.prompt);
            assert!(!t.prompt.contains('{'));
        }
        if get("Color") == Some("gold") && t.one_of_one.is_none() {
            assert!(t.prompt.contains("shiny gold"));
        }
    }
    let king: Vec<&Token> = a.iter().filter(|t| t.one_of_one.is_some()).collect();
    assert_eq!(king.len(), 1);
    assert_eq!(king[0].prompt, "the slime king on a throne, pixel art");
    // Another seed, another draw; each token's image seed depends on the number alone.
    let mut other = spec.clone();
    other.seed = 8;
    assert_ne!(draw(&other).expect("draw"), a);
    assert_eq!(a[3].seed, token_seed(7, 3));
    assert_ne!(a[3].seed, a[4].seed);
}

#[test]
fn too_many_tokens_for_the_combinations_is_refused_by_number() {
    let mut spec = CollectionSpec::parse(SPEC).expect("spec");
    // 4 × 4 × 5 = 80 at most, less the excluded (gold, none) and crowns only in purple.
    spec.tokens = 80;
    let err = draw(&spec).expect_err("too many");
    assert!(
        matches!(err, CollectionError::TooFewCombinations { wanted: 80, .. }),
        "{err}"
    );
}

#[test]
fn rules_that_name_unknown_traits_or_values_are_refused() {
    let broken = SPEC.replace(
        "then = { Color = \"purple\" }",
        "then = { Colour = \"purple\" }",
    );
    let err = CollectionSpec::parse(&broken).expect_err("unknown trait");
    assert!(err.to_string().contains("\"Colour\""), "{err}");
    let broken = SPEC.replace("{hat}", "{hats}");
    let err = CollectionSpec::parse(&broken).expect_err("slot");
    assert!(err.to_string().contains("{hat}"), "{err}");
    let broken = SPEC.replace("tokens = 40", "tokens = 40\nsupply = 3");
    assert!(
        CollectionSpec::parse(&broken).is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn rarity_counts_every_value_and_ranks_the_rarest_first() {
    let spec = CollectionSpec::parse(SPEC).expect("spec");
    let tokens = draw(&spec).expect("draw");
    let r = rarity(&spec, &tokens);
    for t in &r.traits {
        let total: u32 = t.values.iter().map(|v| v.count).sum();
        assert_eq!(total, 40, "{}", t.name);
    }
    let king = tokens
        .iter()
        .find(|t| t.one_of_one.is_some())
        .expect("king");
    let best = r.ranking.iter().find(|x| x.rank == 1).expect("rank 1");
    // Gold, crown and one eye are each as rare as can be here: the king ranks first.
    assert_eq!(best.number, king.number);
    let mut scores: Vec<(u32, f64)> = r.ranking.iter().map(|x| (x.rank, x.score)).collect();
    scores.sort_by_key(|s| s.0);
    assert!(scores.windows(2).all(|w| w[0].1 >= w[1].1));
    let page = rarity_page("Slimes <1>", &r, &tokens, &|n| format!("images/{n}.png"));
    assert!(page.contains("Slimes &lt;1&gt;"));
    assert!(page.contains("images/0.png"));
}

#[test]
fn the_provenance_hash_is_the_hash_of_the_ordered_image_hashes() {
    let p = provenance(vec!["ab".into(), "cd".into()]);
    let q = provenance(vec!["cd".into(), "ab".into()]);
    assert_ne!(p.provenance, q.provenance);
    // sha256("abcd")
    assert_eq!(
        p.provenance,
        "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
    );
}
