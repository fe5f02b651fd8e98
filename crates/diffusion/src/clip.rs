//! The CLIP text encoder (OpenAI CLIP-L for SD1.x, OpenCLIP-H for SD2.x, both for SDXL), and the
//! tokenizer with each model's padding rule.

use candle_core::{DType, Device, IndexOp, Tensor};
use instant_clip_tokenizer::{Token, Tokenizer};

use crate::config::ClipConfig;
use crate::error::{Error, Result};
use crate::nn::{LayerNorm, Linear, attention, merge_heads, split_heads};
use crate::weights::Vb;

pub const CONTEXT: usize = 77;
pub const BOS: u32 = 49406;
pub const EOS: u32 = 49407;

/// What fills a prompt after its end token: SD1.x and SDXL's first encoder repeat `<|endoftext|>`,
/// SD2.x and SDXL's second encoder pad with `!` (token 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadToken {
    Eos,
    Zero,
}

impl PadToken {
    fn id(self) -> u32 {
        match self {
            PadToken::Eos => EOS,
            PadToken::Zero => 0,
        }
    }

    /// Reads the pad token from a diffusers `tokenizer_config.json` value.
    pub fn from_name(name: &str) -> PadToken {
        if name == "!" {
            PadToken::Zero
        } else {
            PadToken::Eos
        }
    }
}

/// CLIP's BPE (shipped with instant-clip-tokenizer), cutting long prompts into 75-token chunks
/// that each get their own `<start>`/`<end>`, as A1111 does, instead of dropping the rest.
pub struct PromptTokenizer {
    bpe: Tokenizer,
}

impl std::fmt::Debug for PromptTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromptTokenizer")
    }
}

impl Default for PromptTokenizer {
    fn default() -> Self {
        PromptTokenizer::new()
    }
}

impl PromptTokenizer {
    pub fn new() -> PromptTokenizer {
        PromptTokenizer {
            bpe: Tokenizer::new(),
        }
    }

    /// The prompt's tokens without start/end, as transformers' `CLIPTokenizer` gives them
    /// (with ftfy, the path CLIP was trained on): its special tokens split out of the raw
    /// text, each piece fixed by [`crate::textclean::fix_text`], whitespace-cleaned, lower-cased,
    /// then CLIP's regex and BPE.
    pub fn words(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        loop {
            let next = [("<|startoftext|>", BOS), ("<|endoftext|>", EOS)]
                .into_iter()
                .filter_map(|(marker, id)| rest.find(marker).map(|at| (at, marker, id)))
                .min_by_key(|&(at, _, _)| at);
            let Some((at, marker, id)) = next else {
                self.encode_piece(rest, &mut ids);
                return ids;
            };
            self.encode_piece(&rest[..at], &mut ids);
            ids.push(id);
            rest = &rest[at + marker.len()..];
        }
    }

    fn encode_piece(&self, piece: &str, ids: &mut Vec<u32>) {
        let mut out: Vec<Token> = Vec::new();
        let fixed = crate::textclean::fix_text(piece);
        let clean = fixed
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        // The BPE crate reads `<start_of_text>` and `<end_of_text>` as its own markers; CLIP's
        // tokeniser reads them as text. Cut just after their `<`: a punctuation run ends there
        // anyway, so the words are the same.
        let mut from = 0;
        for (at, _) in clean
            .match_indices("<start_of_text>")
            .chain(clean.match_indices("<end_of_text>"))
            .map(|(at, m)| (at + 1, m))
            .collect::<std::collections::BTreeSet<_>>()
        {
            self.bpe.encode(&clean[from..at], &mut out);
            from = at;
        }
        self.bpe.encode(&clean[from..], &mut out);
        ids.extend(out.into_iter().map(|t| u32::from(t.to_u16())));
    }

    /// Chunks of exactly 77 ids, at least `min_chunks` of them (so a negative prompt can match
    /// the positive one's length).
    pub fn chunks(&self, text: &str, pad: PadToken, min_chunks: usize) -> Vec<Vec<u32>> {
        let words = self.words(text);
        let body = CONTEXT - 2;
        let n = words.len().div_ceil(body).max(min_chunks).max(1);
        (0..n)
            .map(|i| {
                let part = words.iter().skip(i * body).take(body);
                let mut ids = Vec::with_capacity(CONTEXT);
                ids.push(BOS);
                ids.extend(part);
                ids.push(EOS);
                ids.resize(CONTEXT, pad.id());
                ids
            })
            .collect()
    }
}

struct Layer {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// Output of one encoder call on a batch of 77-token chunks.
#[derive(Debug)]
pub struct ClipOutput {
    /// After the final layer norm: `(b, 77, hidden)`.
    pub last: Tensor,
    /// Input of the last layer, no final norm (SDXL and "clip skip 2"): `(b, 77, hidden)`.
    pub penultimate: Tensor,
    /// `text_projection(final_norm(last)[eos])`: `(b, projection_dim)`, only with a projection.
    pub pooled: Option<Tensor>,
}

pub struct ClipTextModel {
    cfg: ClipConfig,
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<Layer>,
    final_ln: LayerNorm,
    projection: Option<Linear>,
}

impl std::fmt::Debug for ClipTextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTextModel")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl ClipTextModel {
    pub fn new(vb: &Vb, cfg: &ClipConfig) -> Result<ClipTextModel> {
        if !matches!(cfg.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(Error::InvalidRequest(format!(
                "text encoder activation {} is not supported (quick_gelu or gelu)",
                cfg.hidden_act
            )));
        }
        let h = cfg.hidden_size;
        let tm = vb.pp("text_model");
        let emb = tm.pp("embeddings");
        let token_embedding = emb
            .pp("token_embedding")
            .get(&[cfg.vocab_size, h], "weight")?;
        let position_embedding = emb
            .pp("position_embedding")
            .get(&[cfg.max_position_embeddings, h], "weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = tm.pp("encoder.layers").pp(i);
            let a = l.pp("self_attn");
            layers.push(Layer {
                ln1: LayerNorm::new(&l.pp("layer_norm1"), h, cfg.layer_norm_eps)?,
                q: Linear::new(&a.pp("q_proj"), h, h, true)?,
                k: Linear::new(&a.pp("k_proj"), h, h, true)?,
                v: Linear::new(&a.pp("v_proj"), h, h, true)?,
                out: Linear::new(&a.pp("out_proj"), h, h, true)?,
                ln2: LayerNorm::new(&l.pp("layer_norm2"), h, cfg.layer_norm_eps)?,
                fc1: Linear::new(&l.pp("mlp.fc1"), h, cfg.intermediate_size, true)?,
                fc2: Linear::new(&l.pp("mlp.fc2"), cfg.intermediate_size, h, true)?,
            });
        }
        let final_ln = LayerNorm::new(&tm.pp("final_layer_norm"), h, cfg.layer_norm_eps)?;
        let projection = if cfg.with_projection() {
            let p = cfg.projection_dim.unwrap_or(h);
            Some(Linear::new(&vb.pp("text_projection"), h, p, false)?)
        } else {
            None
        };
        Ok(ClipTextModel {
            cfg: cfg.clone(),
            token_embedding,
            position_embedding,
            layers,
            final_ln,
            projection,
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.cfg
    }

    fn act(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if self.cfg.hidden_act == "gelu" {
            x.gelu_erf()?
        } else {
            (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?
        })
    }

    /// Encodes `(b, 77)` ids.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<ClipOutput> {
        let b = ids.len();
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let n = CONTEXT;
        if let Some(bad) = flat.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            return Err(Error::InvalidRequest(format!(
                "token {bad} is outside the text encoder's vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        let idx = Tensor::from_vec(flat, (b * n,), device)?;
        let dtype = self.token_embedding.dtype();
        let mut x = self
            .token_embedding
            .index_select(&idx, 0)?
            .reshape((b, n, ()))?;
        x = x.broadcast_add(&self.position_embedding.narrow(0, 0, n)?.unsqueeze(0)?)?;
        let heads = self.cfg.num_attention_heads;
        // Causal mask: position i attends to 0..=i.
        let mask: Vec<f32> = (0..n)
            .flat_map(|i| (0..n).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n, n), device)?.to_dtype(DType::F32)?;
        let mut penultimate = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            if i + 1 == self.layers.len() {
                penultimate = x.clone();
            }
            let h = l.ln1.forward(&x)?;
            let q = split_heads(&l.q.forward(&h)?, heads)?;
            let k = split_heads(&l.k.forward(&h)?, heads)?;
            let v = split_heads(&l.v.forward(&h)?, heads)?;
            let a = merge_heads(&attention(&q, &k, &v, Some(&mask))?, heads)?;
            x = (x + l.out.forward(&a)?)?;
            let h = l.ln2.forward(&x)?;
            let h = l.fc2.forward(&self.act(&l.fc1.forward(&h)?)?)?;
            x = (x + h)?;
        }
        let last = self.final_ln.forward(&x)?;
        let pooled = match &self.projection {
            Some(p) => {
                let mut rows = Vec::with_capacity(b);
                for (i, chunk) in ids.iter().enumerate() {
                    let eos = chunk.iter().position(|&t| t == EOS).unwrap_or(n - 1);
                    rows.push(last.i((i, eos))?.unsqueeze(0)?);
                }
                Some(p.forward(&Tensor::cat(&rows, 0)?)?)
            }
            None => None,
        };
        Ok(ClipOutput {
            last: last.to_dtype(dtype)?,
            penultimate,
            pooled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_parity_with_transformers_on_a_thousand_prompts() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tokenizer/clip_bpe.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `scripts/fixtures tokenizer` to make it",
                path.display()
            )
        });
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
        assert!(rows.len() >= 1000, "{} prompts", rows.len());
        let t = PromptTokenizer::new();
        let ids = |v: &serde_json::Value| -> Vec<u32> {
            v.as_array()
                .expect("ids")
                .iter()
                .map(|x| x.as_u64().expect("id") as u32)
                .collect()
        };
        let mut wrong = Vec::new();
        let (mut fallback, mut fast) = (0, 0);
        for r in &rows {
            let prompt = r["prompt"].as_str().expect("prompt");
            let theirs = ids(&r["ids"]);
            fallback += usize::from(ids(&r["fallback"]) != theirs);
            fast += usize::from(ids(&r["fast"]) != theirs);
            let ours = t.words(prompt);
            if ours != theirs {
                wrong.push(format!(
                    "{prompt:?}\n  ours   {ours:?}\n  theirs {theirs:?}"
                ));
            }
        }
        println!(
            "{} prompts: {} differ from CLIPTokenizer with ftfy (transformers' own fallback \
             without ftfy differs on {fallback}, CLIPTokenizerFast on {fast})",
            rows.len(),
            wrong.len()
        );
        assert!(
            wrong.is_empty(),
            "{} of {} prompts tokenised differently, first:\n{}",
            wrong.len(),
            rows.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
        );
    }

    #[test]
    fn long_prompts_become_several_chunks() {
        let t = PromptTokenizer::new();
        assert_eq!(t.words("Hi there"), vec![1883, 997]);
        let short = t.chunks("a knight", PadToken::Eos, 1);
        assert_eq!(short.len(), 1);
        assert_eq!(short[0][0], BOS);
        assert!(short[0][3..].iter().all(|&x| x == EOS));
        let zero = t.chunks("a knight", PadToken::Zero, 2);
        assert_eq!(zero.len(), 2);
        assert_eq!(zero[0][3], EOS);
        assert_eq!(zero[0][4], 0);
        let long = "knight ".repeat(100);
        let chunks = t.chunks(&long, PadToken::Eos, 1);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.len() == CONTEXT && c[0] == BOS));
        assert_eq!(chunks[0][76], EOS);
    }
}
