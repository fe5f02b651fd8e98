//! AdamW with decoupled weight decay, as `torch.optim.AdamW` computes it. Ours rather than
//! candle-nn's so its moments can be written into a checkpoint and read back: a resumed run
//! continues exactly where the interrupted one stopped.

use candle_core::{Tensor, Var};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        // torch's defaults, except the decay kohya's scripts use for LoRAs.
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// The state of one parameter: first and second moments.
#[derive(Debug, Clone)]
pub struct Moments {
    pub m: Tensor,
    pub v: Tensor,
}

#[derive(Debug)]
pub struct AdamW {
    pub config: AdamWConfig,
    /// Steps taken, for the bias correction.
    pub t: u64,
    pub moments: Vec<Moments>,
}

impl AdamW {
    pub fn new(params: &[Var], config: AdamWConfig) -> Result<AdamW> {
        let moments = params
            .iter()
            .map(|p| {
                Ok(Moments {
                    m: p.as_tensor().zeros_like()?.detach(),
                    v: p.as_tensor().zeros_like()?.detach(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW {
            config,
            t: 0,
            moments,
        })
    }

    /// One update of every parameter with its gradient (`None`: the parameter did not reach
    /// the loss this step and keeps its value, as torch skips a parameter whose grad is None).
    pub fn step(&mut self, params: &[Var], grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.t += 1;
        let c = self.config;
        let t = self.t as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for ((p, g), mo) in params.iter().zip(grads).zip(self.moments.iter_mut()) {
            let Some(g) = g else { continue };
            let g = g.detach();
            let m = ((&mo.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&mo.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let theta = p.as_tensor().detach();
            let decayed = (&theta * (1.0 - lr * c.weight_decay))?;
            let m_hat = (&m / bias1)?;
            let v_hat = (&v / bias2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            p.set(&(decayed - (update * lr)?)?)?;
            mo.m = m;
            mo.v = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adamw_matches_torch_on_a_two_step_example() {
        // torch.optim.AdamW([p], lr=0.1, weight_decay=0.01) with p = [1, -2], grads [0.5, 0.25]
        // then [-1, 2] (torch 2.5.1 printed these).
        let dev = Device::Cpu;
        let p = Var::new(&[1f32, -2.0], &dev).expect("var");
        let mut opt = AdamW::new(std::slice::from_ref(&p), AdamWConfig::default()).expect("opt");
        for (g, want) in [
            (
                [0.5f32, 0.25],
                [0.899_000_048_637_390_1f64, -2.098_000_049_591_064_5],
            ),
            (
                [-1.0, 2.0],
                [0.934_711_396_694_183_3, -2.178_048_610_687_256],
            ),
        ] {
            let g = Tensor::new(&g, &dev).expect("g");
            opt.step(std::slice::from_ref(&p), &[Some(g)], 0.1)
                .expect("step");
            let got = p.as_tensor().to_vec1::<f32>().expect("v");
            for (a, b) in got.iter().zip(want) {
                assert!((f64::from(*a) - b).abs() < 1e-6, "{got:?} vs {want:?}");
            }
        }
    }
}
