//! The ranges numeric settings must lie in: one table, so the CLI, the studio and the webview
//! refuse the same values with the same message (which names the range).

use std::ops::RangeInclusive;

/// A named numeric setting with its accepted range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded {
    pub name: &'static str,
    pub range: RangeInclusive<f64>,
    /// Whether the low end itself is refused (strength 0 would change nothing).
    pub open_low: bool,
}

/// Classifier-free guidance scale; A1111 and ComfyUI stop at 30.
pub const GUIDANCE: Bounded = Bounded {
    name: "guidance",
    range: 0.0..=30.0,
    open_low: false,
};
/// img2img / inpaint strength.
pub const STRENGTH: Bounded = Bounded {
    name: "strength",
    range: 0.0..=1.0,
    open_low: true,
};
/// A LoRA's weight; negative weights push away from the LoRA's style.
pub const LORA_STRENGTH: Bounded = Bounded {
    name: "LoRA strength",
    range: -4.0..=4.0,
    open_low: false,
};
/// The largest seed: seeds stay below 2^53 so JavaScript numbers in the UI hold them exactly.
pub const MAX_SEED: u64 = (1 << 53) - 1;

impl Bounded {
    /// `v` if it is finite and in range; otherwise a message naming the setting and the range.
    pub fn check(&self, v: f64) -> Result<f64, String> {
        let (lo, hi) = (*self.range.start(), *self.range.end());
        let low_ok = if self.open_low { v > lo } else { v >= lo };
        if v.is_finite() && low_ok && v <= hi {
            Ok(v)
        } else {
            let op = if self.open_low { "<" } else { "≤" };
            let what = if v.is_finite() {
                format!("{v}")
            } else {
                format!("{v} (not a finite number)")
            };
            Err(format!(
                "{} {what} is out of range: it must be {lo} {op} {} ≤ {hi}",
                self.name, self.name
            ))
        }
    }

    /// Parses and checks a command-line value.
    pub fn parse(&self, s: &str) -> Result<f32, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{} {s:?} is not a number", self.name))?;
        self.check(v).map(|v| v as f32)
    }
}

/// A seed as typed: `-1` (A1111's spelling) means a random one, like leaving it out.
pub fn parse_seed(s: &str) -> Result<Option<u64>, String> {
    let v: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("seed {s:?} is not a whole number"))?;
    match v {
        -1 => Ok(None),
        v if v >= 0 && v as u64 <= MAX_SEED => Ok(Some(v as u64)),
        _ => Err(format!(
            "seed {v} is out of range: use 0 to {MAX_SEED}, or -1 for a random seed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_infinity_and_out_of_range_values_are_refused_with_the_range() {
        for bad in ["NaN", "inf", "-inf", "31", "-0.5"] {
            let e = GUIDANCE.parse(bad).expect_err("out of range");
            assert!(e.contains("0 ≤ guidance ≤ 30"), "{bad}: {e}");
        }
        assert_eq!(GUIDANCE.parse("7.5"), Ok(7.5));
        assert_eq!(GUIDANCE.parse("0"), Ok(0.0));
        assert!(
            STRENGTH
                .parse("0")
                .expect_err("out of range")
                .contains("0 < strength ≤ 1")
        );
        assert_eq!(LORA_STRENGTH.parse("-0.5"), Ok(-0.5));
        assert!(
            GUIDANCE
                .parse("seven")
                .expect_err("out of range")
                .contains("not a number")
        );
    }

    #[test]
    fn seed_minus_one_is_random_and_other_negatives_are_refused() {
        assert_eq!(parse_seed("-1"), Ok(None));
        assert_eq!(parse_seed("42"), Ok(Some(42)));
        assert!(
            parse_seed("-2")
                .expect_err("out of range")
                .contains("-1 for a random seed")
        );
        assert!(parse_seed("9007199254740992").is_err());
    }
}
