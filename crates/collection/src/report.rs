//! The rarity report and the provenance hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Token;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: u32,
    /// count / tokens.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraitCount {
    pub name: String,
    pub values: Vec<ValueCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RarityToken {
    pub number: u32,
    pub dna: String,
    /// The sum over its traits of 1 / the share of its value (rarity.tools' score).
    pub score: f64,
    /// 1 = rarest; equal scores share a rank (1, 2, 2, 4).
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rarity {
    pub tokens: u32,
    pub traits: Vec<TraitCount>,
    /// In token order.
    pub ranking: Vec<RarityToken>,
}

/// Counts and shares per trait value (in the spec's order, values never drawn included), and
/// every token's score and rank.
pub fn rarity(spec: &crate::CollectionSpec, tokens: &[Token]) -> Rarity {
    let n = tokens.len().max(1) as f64;
    let traits: Vec<TraitCount> = spec
        .traits
        .iter()
        .enumerate()
        .map(|(i, t)| TraitCount {
            name: t.name.clone(),
            values: t
                .values
                .iter()
                .map(|v| {
                    let count = tokens.iter().filter(|k| k.traits[i].1 == v.value).count() as u32;
                    ValueCount {
                        value: v.value.clone(),
                        count,
                        share: f64::from(count) / n,
                    }
                })
                .collect(),
        })
        .collect();
    let mut ranking: Vec<RarityToken> = tokens
        .iter()
        .map(|k| RarityToken {
            number: k.number,
            dna: k.dna.clone(),
            score: k
                .traits
                .iter()
                .zip(&traits)
                .map(|((_, v), t)| {
                    let share = t
                        .values
                        .iter()
                        .find(|c| &c.value == v)
                        .map_or(1.0, |c| c.share);
                    1.0 / share
                })
                .sum(),
            rank: 0,
        })
        .collect();
    let mut order: Vec<usize> = (0..ranking.len()).collect();
    order.sort_by(|&a, &b| {
        ranking[b]
            .score
            .total_cmp(&ranking[a].score)
            .then(ranking[a].number.cmp(&ranking[b].number))
    });
    let mut last: Option<(f64, u32)> = None;
    for (place, &i) in order.iter().enumerate() {
        let rank = match last {
            Some((score, rank)) if score == ranking[i].score => rank,
            _ => place as u32 + 1,
        };
        ranking[i].rank = rank;
        last = Some((ranking[i].score, rank));
    }
    Rarity {
        tokens: tokens.len() as u32,
        traits,
        ranking,
    }
}

/// The provenance record: each image's sha256 in token order, and the sha256 of their
/// concatenated hex digests (as collections publish before the reveal, so the order cannot be
/// changed after the mint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub provenance: String,
    pub images: Vec<String>,
}

pub fn provenance(image_sha256_hex: Vec<String>) -> Provenance {
    let mut h = Sha256::new();
    for d in &image_sha256_hex {
        h.update(d.as_bytes());
    }
    Provenance {
        provenance: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        images: image_sha256_hex,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page to look at: each trait's values with their counts and shares, then every token by
/// rank with its image (`image_of(number)`, a path relative to the page) and traits. No script,
/// no remote content.
pub fn rarity_page(
    name: &str,
    rarity: &Rarity,
    tokens: &[Token],
    image_of: &dyn Fn(u32) -> String,
) -> String {
    let mut p = String::new();
    p.push_str("<!doctype html>\n<meta charset=\"utf-8\">\n");
    p.push_str(&format!("<title>{} — rarity</title>\n", esc(name)));
    p.push_str(
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}\
         img{width:64px;height:64px;image-rendering:pixelated}</style>\n",
    );
    p.push_str(&format!(
        "<h1>{} — {} tokens</h1>\n",
        esc(name),
        rarity.tokens
    ));
    for t in &rarity.traits {
        p.push_str(&format!(
            "<h2>{}</h2>\n<table><tr><th>value<th>count<th>share</tr>\n",
            esc(&t.name)
        ));
        for v in &t.values {
            p.push_str(&format!(
                "<tr><td>{}<td>{}<td>{:.2} %</tr>\n",
                esc(&v.value),
                v.count,
                v.share * 100.0
            ));
        }
        p.push_str("</table>\n");
    }
    p.push_str("<h2>Tokens by rarity</h2>\n<table><tr><th>rank<th>token<th>image<th>score<th>traits</tr>\n");
    let mut by_rank: Vec<&crate::RarityToken> = rarity.ranking.iter().collect();
    by_rank.sort_by_key(|r| (r.rank, r.number));
    for r in by_rank {
        let traits = tokens
            .iter()
            .find(|t| t.number == r.number)
            .map(|t| {
                t.traits
                    .iter()
                    .map(|(k, v)| format!("{}: {}", esc(k), esc(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        p.push_str(&format!(
            "<tr><td>{}<td>#{}<td><img src=\"{}\" alt=\"#{}\"><td>{:.2}<td>{}</tr>\n",
            r.rank,
            r.number,
            esc(&image_of(r.number)),
            r.number,
            r.score,
            traits
        ));
    }
    p.push_str("</table>\n");
    p
}
