//! Generative collections, as HashLips does them with layers but with prompts: a spec names a
//! prompt template with trait slots and each trait's values with rarity weights; [`draw`] gives
//! every token a unique DNA (one value per trait) and its prompt and seed, deterministically from
//! the spec's seed. [`rarity`] reports how common each value is and ranks the tokens;
//! [`provenance`] is the hash collections publish before they reveal.

mod report;
mod spec;

pub use report::{
    Provenance, Rarity, RarityToken, TraitCount, ValueCount, provenance, rarity, rarity_page,
};
pub use spec::{CollectionSpec, Exclusion, ForcedPair, OneOfOne, TraitDef, TraitValue};

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("the collection spec is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("the collection spec: {0}")]
    Invalid(String),
    #[error(
        "only {drawn} distinct tokens could be drawn of the {wanted} asked: the traits' values (after exclusions and forced pairs) do not make enough unique combinations; add values or ask for fewer tokens"
    )]
    TooFewCombinations { drawn: usize, wanted: usize },
}

/// One token as drawn: its number, traits in the spec's order, prompt and seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub number: u32,
    /// `value|value|…` in the spec's trait order: unique within the collection.
    pub dna: String,
    pub traits: Vec<(String, String)>,
    pub prompt: String,
    pub seed: u64,
    /// The one-of-one's name, where the token is one.
    pub one_of_one: Option<String>,
}

/// A small, fixed generator (SplitMix64) so a spec draws the same tokens on every machine and
/// in every version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without the modulo's bias.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next();
            if v < zone {
                return v % n;
            }
        }
    }
}

/// Draws attempted per token before the spec is said to have too few combinations.
const ATTEMPTS: usize = 2000;

/// Every token of the collection: one-of-ones as written, the rest drawn by weight, forced
/// pairs applied, exclusions and repeats drawn again; then all shuffled into token order (so
/// one-of-ones are not all at the end). The same spec always gives the same tokens.
pub fn draw(spec: &CollectionSpec) -> Result<Vec<Token>, CollectionError> {
    spec.validate()?;
    let mut rng = Rng(spec.seed);
    let mut seen = HashSet::new();
    let mut drawn: Vec<(BTreeMap<String, String>, Option<&OneOfOne>)> = Vec::new();
    for o in &spec.one_of_ones {
        let chosen = o.traits.clone();
        if !seen.insert(spec.dna(&chosen)) {
            return Err(CollectionError::Invalid(format!(
                "one-of-one {:?} has the same traits as another",
                o.name
            )));
        }
        drawn.push((chosen, Some(o)));
    }
    let wanted = spec.tokens as usize;
    'token: while drawn.len() < wanted {
        for _ in 0..ATTEMPTS {
            let mut chosen = BTreeMap::new();
            for t in &spec.traits {
                chosen.insert(
                    t.name.clone(),
                    t.pick(rng.below(t.total_weight()))?.to_owned(),
                );
            }
            spec.apply_forced(&mut chosen);
            if spec.excluded(&chosen) {
                continue;
            }
            if seen.insert(spec.dna(&chosen)) {
                drawn.push((chosen, None));
                continue 'token;
            }
        }
        return Err(CollectionError::TooFewCombinations {
            drawn: drawn.len(),
            wanted,
        });
    }
    // Fisher–Yates with the same generator.
    for i in (1..drawn.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        drawn.swap(i, j);
    }
    let mut tokens = Vec::with_capacity(drawn.len());
    for (n, (chosen, one)) in drawn.into_iter().enumerate() {
        let number = n as u32;
        let prompt = match one.and_then(|o| o.prompt.clone()) {
            Some(p) => p,
            None => spec.fill_prompt(&chosen)?,
        };
        tokens.push(Token {
            number,
            dna: spec.dna(&chosen),
            traits: spec
                .traits
                .iter()
                .map(|t| (t.name.clone(), chosen[&t.name].clone()))
                .collect(),
            prompt,
            seed: token_seed(spec.seed, number),
            one_of_one: one.map(|o| o.name.clone()),
        });
    }
    Ok(tokens)
}

/// Each token's image seed: from the collection's seed and the token's number alone, so a
/// token draws the same image wherever and whenever it is generated. Kept below 2³² so every
/// engine (and every other tool) can take it.
pub fn token_seed(collection_seed: u64, number: u32) -> u64 {
    let mut r = Rng(collection_seed ^ (u64::from(number) << 32 | u64::from(number)));
    r.next() >> 32
}

#[cfg(test)]
mod tests;
