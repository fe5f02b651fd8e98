//! Deliberate kernel bugs for checking the parity tests (`scripts/mutation-check`): built only
//! with the `mutation` feature, each turned on by `MINTFRAME_MUTATE=<name>`. Every parity test
//! that runs the kernel must then fail; a mutation that survives means a test cannot see that
//! kind of error. Without the feature [`active`] is a constant `false`.

/// A perturbation of one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Attention reads keys where it should read values and the other way round.
    Attention,
    /// GroupNorm's epsilon is 1e-2 instead of the model's.
    GroupNormEps,
    /// The timestep embedding puts sin before cos.
    SinCos,
}

impl Mutation {
    pub const ALL: [Mutation; 3] = [
        Mutation::Attention,
        Mutation::GroupNormEps,
        Mutation::SinCos,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutation::Attention => "attention",
            Mutation::GroupNormEps => "groupnorm",
            Mutation::SinCos => "sincos",
        }
    }
}

/// Whether `m` is switched on for this process.
#[cfg(feature = "mutation")]
pub fn active(m: Mutation) -> bool {
    std::env::var("MINTFRAME_MUTATE").is_ok_and(|v| v == m.name())
}

/// Whether `m` is switched on for this process: never, without the `mutation` feature.
#[cfg(not(feature = "mutation"))]
pub const fn active(_: Mutation) -> bool {
    false
}
