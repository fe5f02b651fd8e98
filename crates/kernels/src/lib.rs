//! CPU kernels of our own (see README.md): each detects what the CPU has at run time and
//! declines, touching nothing, where it cannot run, so callers keep a portable path.

pub mod bf16;
