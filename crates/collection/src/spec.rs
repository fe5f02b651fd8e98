//! The collection spec as a creator writes it (TOML), and the rules it carries.

use std::collections::BTreeMap;

use mintframe_types::{Layout, Standard};
use serde::{Deserialize, Serialize};

use crate::CollectionError;

/// A generative collection, e.g.
///
/// ```toml
/// name = "Slimes"
/// tokens = 100
/// seed = 7
/// prompt = "pixel art slime, {color} body, wearing {hat}"
/// model = "tiny-sd"
///
/// [[traits]]
/// name = "Color"
/// slot = "color"
/// values = [{ value = "green", weight = 60 }, { value = "gold", weight = 5 }]
///
/// [[exclude]]
/// traits = { Color = "gold", Hat = "none" }
///
/// [[force]]
/// when = { Hat = "crown" }
/// then = { Color = "purple" }
///
/// [[one_of_ones]]
/// name = "The Slime King"
/// traits = { Color = "gold", Hat = "crown" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How many tokens, one-of-ones included.
    pub tokens: u32,
    /// Draws the DNA and every token's image seed.
    #[serde(default)]
    pub seed: u64,
    /// The prompt with `{slot}` for each trait.
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    /// A model id (`mintframe models list`); default: the bundled tiny model.
    #[serde(default = "default_model")]
    pub model: String,
    pub steps: Option<u32>,
    pub guidance: Option<f32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    #[serde(default = "default_standard")]
    pub standard: Standard,
    #[serde(default = "default_layout")]
    pub layout: Layout,
    pub traits: Vec<TraitDef>,
    #[serde(default)]
    pub exclude: Vec<Exclusion>,
    #[serde(default)]
    pub force: Vec<ForcedPair>,
    #[serde(default)]
    pub one_of_ones: Vec<OneOfOne>,
}

fn default_model() -> String {
    "tiny-sd".into()
}
fn default_standard() -> Standard {
    Standard::Erc721
}
fn default_layout() -> Layout {
    Layout::Numbered
}

/// A trait: its name in the metadata, its slot in the prompt, its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitDef {
    pub name: String,
    /// The `{slot}` it fills; default: the name in lower case.
    pub slot: Option<String>,
    pub values: Vec<TraitValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitValue {
    pub value: String,
    /// Relative weight (its chance is weight / the trait's total).
    #[serde(default = "one")]
    pub weight: u32,
    /// Words for the prompt; default: the value itself.
    pub prompt: Option<String>,
}

fn one() -> u32 {
    1
}

/// Values that never appear together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub traits: BTreeMap<String, String>,
}

/// Where every `when` value is drawn, the `then` values are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedPair {
    pub when: BTreeMap<String, String>,
    pub then: BTreeMap<String, String>,
}

/// A token written by hand: its traits (every trait named), optionally its own prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneOfOne {
    pub name: String,
    pub traits: BTreeMap<String, String>,
    pub prompt: Option<String>,
}

impl TraitDef {
    pub fn slot(&self) -> String {
        self.slot
            .clone()
            .unwrap_or_else(|| self.name.to_lowercase())
    }

    pub(crate) fn total_weight(&self) -> u64 {
        self.values.iter().map(|v| u64::from(v.weight)).sum()
    }

    pub(crate) fn pick(&self, mut r: u64) -> Result<&str, CollectionError> {
        for v in &self.values {
            if r < u64::from(v.weight) {
                return Ok(&v.value);
            }
            r -= u64::from(v.weight);
        }
        Err(CollectionError::Invalid(format!(
            "trait {:?} has no weight to draw from",
            self.name
        )))
    }

    fn value(&self, value: &str) -> Option<&TraitValue> {
        self.values.iter().find(|v| v.value == value)
    }
}

impl CollectionSpec {
    pub fn parse(text: &str) -> Result<CollectionSpec, CollectionError> {
        let spec: CollectionSpec = toml::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Every rule a draw relies on, each broken one named.
    pub fn validate(&self) -> Result<(), CollectionError> {
        let bad = |m: String| Err(CollectionError::Invalid(m));
        if self.name.trim().is_empty() {
            return bad("the collection needs a name".into());
        }
        if self.tokens == 0 {
            return bad("tokens must be at least 1".into());
        }
        if self.traits.is_empty() {
            return bad("at least one [[traits]] is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.traits {
            if !names.insert(t.name.as_str()) {
                return bad(format!("trait {:?} is defined twice", t.name));
            }
            if t.values.is_empty() || t.total_weight() == 0 {
                return bad(format!(
                    "trait {:?} needs a value with a weight above 0",
                    t.name
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for v in &t.values {
                if !seen.insert(v.value.as_str()) {
                    return bad(format!("trait {:?} lists {:?} twice", t.name, v.value));
                }
                if v.value.contains('|') {
                    return bad(format!(
                        "trait {:?} value {:?}: '|' separates values in the DNA",
                        t.name, v.value
                    ));
                }
            }
            if !self.prompt.contains(&format!("{{{}}}", t.slot())) {
                return bad(format!(
                    "the prompt has no {{{}}} for trait {:?}",
                    t.slot(),
                    t.name
                ));
            }
        }
        let check = |what: &str, m: &BTreeMap<String, String>| -> Result<(), CollectionError> {
            for (k, v) in m {
                let Some(t) = self.traits.iter().find(|t| &t.name == k) else {
                    return Err(CollectionError::Invalid(format!(
                        "{what} names trait {k:?}, which is not defined"
                    )));
                };
                if t.value(v).is_none() {
                    return Err(CollectionError::Invalid(format!(
                        "{what} names {k} = {v:?}, which is not one of its values"
                    )));
                }
            }
            Ok(())
        };
        for e in &self.exclude {
            if e.traits.len() < 2 {
                return bad("an exclusion needs at least two traits".into());
            }
            check("an exclusion", &e.traits)?;
        }
        for f in &self.force {
            check("a forced pair's `when`", &f.when)?;
            check("a forced pair's `then`", &f.then)?;
        }
        for o in &self.one_of_ones {
            check(&format!("one-of-one {:?}", o.name), &o.traits)?;
            if o.traits.len() != self.traits.len() {
                return bad(format!(
                    "one-of-one {:?} must name a value for every trait",
                    o.name
                ));
            }
        }
        if self.one_of_ones.len() > self.tokens as usize {
            return bad("more one-of-ones than tokens".into());
        }
        Ok(())
    }

    pub(crate) fn apply_forced(&self, chosen: &mut BTreeMap<String, String>) {
        for f in &self.force {
            if f.when.iter().all(|(k, v)| chosen.get(k) == Some(v)) {
                for (k, v) in &f.then {
                    chosen.insert(k.clone(), v.clone());
                }
            }
        }
    }

    pub(crate) fn excluded(&self, chosen: &BTreeMap<String, String>) -> bool {
        self.exclude
            .iter()
            .any(|e| e.traits.iter().all(|(k, v)| chosen.get(k) == Some(v)))
    }

    pub(crate) fn dna(&self, chosen: &BTreeMap<String, String>) -> String {
        self.traits
            .iter()
            .map(|t| chosen.get(&t.name).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("|")
    }

    pub(crate) fn fill_prompt(
        &self,
        chosen: &BTreeMap<String, String>,
    ) -> Result<String, CollectionError> {
        let mut p = self.prompt.clone();
        for t in &self.traits {
            let v = &chosen[&t.name];
            let words = t
                .value(v)
                .and_then(|x| x.prompt.clone())
                .unwrap_or_else(|| v.clone());
            p = p.replace(&format!("{{{}}}", t.slot()), &words);
        }
        Ok(p)
    }
}
