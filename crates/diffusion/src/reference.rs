//! Reference attention ("reference-only"): a reference image steers a generation through the
//! UNet's self-attention, with no extra weights. Each denoising step first runs the UNet on the
//! reference's latents noised to the step's level ([`Reference::Write`]), which records every
//! transformer block's normalised input; the image's own pass ([`Reference::Read`]) then lets
//! each block's self-attention attend to its own tokens and the recorded ones. This is the
//! `reference_attn` of diffusers' community `stable_diffusion_reference` pipeline, with
//! `attention_auto_machine_weight` 1 (every block).
//!
//! The recorded tokens join the image's along the sequence axis, so the reference may have any
//! size the VAE accepts.

use std::sync::Mutex;

use candle_core::Tensor;

use crate::error::{Error, Result};

/// The tokens one reference pass recorded, in the order the UNet visits its blocks.
#[derive(Debug, Default)]
pub struct Bank {
    state: Mutex<BankState>,
}

#[derive(Debug, Default)]
struct BankState {
    tokens: Vec<Tensor>,
    cursor: usize,
}

impl Bank {
    pub fn new() -> Bank {
        Bank::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BankState>> {
        self.state
            .lock()
            .map_err(|_| Error::InvalidRequest("reference attention bank poisoned".into()))
    }

    /// Empties the bank before a new reference pass.
    pub fn clear(&self) -> Result<()> {
        let mut s = self.lock()?;
        s.tokens.clear();
        s.cursor = 0;
        Ok(())
    }

    /// How many blocks recorded their tokens.
    pub fn len(&self) -> Result<usize> {
        Ok(self.lock()?.tokens.len())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    pub(crate) fn push(&self, t: Tensor) -> Result<()> {
        self.lock()?.tokens.push(t);
        Ok(())
    }

    /// The next block's recorded tokens; the read pass visits the blocks in the write pass's order.
    pub(crate) fn next(&self) -> Result<Tensor> {
        let mut s = self.lock()?;
        let i = s.cursor;
        let t = s.tokens.get(i).cloned().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "reference attention: block {i} has no recorded tokens (the reference pass recorded {}); the reference ran on another UNet",
                s.tokens.len()
            ))
        })?;
        s.cursor += 1;
        Ok(t)
    }

    /// Rewinds the read cursor, so one recorded pass can serve several reads.
    pub fn rewind(&self) -> Result<()> {
        self.lock()?.cursor = 0;
        Ok(())
    }
}

/// How a UNet pass takes part in reference attention.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    /// The reference's pass: record each block's normalised input.
    Write(&'a Bank),
    /// The image's pass: attend to the recorded tokens too.
    Read {
        bank: &'a Bank,
        /// 0..1: how much the unconditional rows ignore the reference (diffusers'
        /// `style_fidelity`); at 1 the prompt leads, at 0 the reference does.
        style_fidelity: f64,
        /// The first `uncond` rows of the batch are classifier-free guidance's unconditional half.
        uncond: usize,
    },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::parity::{fixture_unet, fixture_unet_config, rel_err};
    use crate::train::files::read_safetensors;
    use crate::unet::AddedCond;

    /// Our reference attention against the reference-only hook on diffusers' UNet with the same
    /// weights: the reference (6×6 latents) smaller than the image (8×12), at style fidelity
    /// 0.5 and 0, SD 1.5 and SDXL shapes; and a plain pass equals diffusers' unhooked UNet.
    #[test]
    fn reference_attention_matches_the_diffusers_reference_only_hook() {
        let tmp = tempfile::tempdir().expect("tmp");
        for name in ["sd15", "sdxl"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/reference_attn")
                .join(format!("{name}.safetensors"));
            let fx = read_safetensors(&path).expect("fixture").0;
            let unet = fixture_unet(
                &fx,
                &tmp.path().join(format!("{name}.safetensors")),
                &fixture_unet_config(name),
            );
            let added = match (fx.get("in.text_embeds"), fx.get("in.time_ids")) {
                (Some(e), Some(t)) => Some(AddedCond {
                    text_embeds: e.clone(),
                    time_ids: t.clone(),
                }),
                _ => None,
            };
            let (x, t, ctx) = (&fx["in.x"], &fx["in.t"], &fx["in.ctx"]);
            let plain = unet
                .forward_controlled(x, t, ctx, added.as_ref(), None)
                .expect("plain");
            let e = rel_err(&plain, &fx["out.plain"]);
            assert!(e < 1e-4, "{name}: plain pass differs by {e:e}");
            let bank = Bank::new();
            for (tag, sf) in [("sf50", 0.5), ("sf0", 0.0)] {
                bank.clear().expect("clear");
                unet.forward_referenced(
                    &fx["in.ref"],
                    t,
                    ctx,
                    added.as_ref(),
                    None,
                    Some(Reference::Write(&bank)),
                )
                .expect("write");
                assert!(bank.len().expect("len") > 0, "{name}: nothing recorded");
                let out = unet
                    .forward_referenced(
                        x,
                        t,
                        ctx,
                        added.as_ref(),
                        None,
                        Some(Reference::Read {
                            bank: &bank,
                            style_fidelity: sf,
                            uncond: 1,
                        }),
                    )
                    .expect("read");
                let e = rel_err(&out, &fx[&format!("out.{tag}")]);
                assert!(e < 1e-4, "{name}: style fidelity {sf} differs by {e:e}");
                assert!(
                    rel_err(&out, &plain) > 1e-3,
                    "{name}: the reference changed nothing"
                );
            }
        }
    }

    #[test]
    fn a_read_pass_without_a_recorded_reference_is_refused() {
        let bank = Bank::new();
        let err = bank.next().expect_err("empty").to_string();
        assert!(err.contains("block 0 has no recorded tokens"), "{err}");
    }
}
