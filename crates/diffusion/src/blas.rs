//! The machine's OpenBLAS, when one is installed (`scripts/setup` installs Debian's
//! `libopenblas0-pthread`), for the f32 GEMMs of CPU convolutions: loaded at run time, so the
//! build needs nothing and a machine without it runs candle's GEMM as before. On this project's
//! 2-core machine its `sgemm` reaches 250 GFLOP/s where candle's reaches 120 (BENCHMARKS.md).
//! `MINTFRAME_BLAS=off` turns it off (to compare, or to rule it out).

use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

type Sgemm = unsafe extern "C" fn(
    layout: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
);

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

struct Blas {
    sgemm: Sgemm,
    /// `libopenblas.so.0 (Haswell kernels)`, for the doctor.
    name: String,
    // Keeps the library mapped for as long as `sgemm` may be called (the whole process).
    _lib: libloading::Library,
}

/// OpenBLAS's idle threads spin for 2^N cycles before they sleep (`OPENBLAS_THREAD_TIMEOUT`,
/// default N = 28, a tenth of a second). Between two GEMMs the engine's own (rayon) threads run
/// the element-wise ops on the same cores, and the spinning threads took those cores from them:
/// a whole SD 1.5 256² generation spent 13 s of 44 s CPU in the kernel, most of it yielding.
/// N = 4, OpenBLAS's least, makes them sleep at once (21.3 s wall instead of 23.9 s,
/// BENCHMARKS.md). A value the user set is kept. OpenBLAS reads it when it is loaded, so
/// this runs before that, at the start of `main` ([`crate::tune_process`]).
pub(crate) fn sleep_when_idle() {
    const VAR: &str = "OPENBLAS_THREAD_TIMEOUT";
    if std::env::var_os(VAR).is_none() {
        #[allow(unsafe_code)]
        // SAFETY: called at the start of `main`, before any thread exists that could read the
        // environment at the same time.
        unsafe {
            std::env::set_var(VAR, "4")
        };
    }
}

fn blas() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(load).as_ref()
}

fn load() -> Option<Blas> {
    if std::env::var("MINTFRAME_BLAS").is_ok_and(|v| v == "off") {
        tracing::info!("MINTFRAME_BLAS=off: candle's GEMM for CPU convolutions");
        return None;
    }
    for name in ["libopenblas.so.0", "libopenblas.so"] {
        #[allow(unsafe_code)]
        // SAFETY: loading OpenBLAS runs its initialisers, which only set up its thread pool;
        // both symbols are looked up with the C signatures OpenBLAS's cblas.h declares.
        let found = unsafe {
            libloading::Library::new(name).ok().and_then(|lib| {
                let sgemm = *lib.get::<Sgemm>(b"cblas_sgemm\0").ok()?;
                let core = lib
                    .get::<unsafe extern "C" fn() -> *const c_char>(b"openblas_get_corename\0")
                    .ok()
                    .map(|f| std::ffi::CStr::from_ptr(f()).to_string_lossy().into_owned());
                Some((lib, sgemm, core))
            })
        };
        if let Some((lib, sgemm, core)) = found {
            tracing::info!(
                library = name,
                kernel = core.as_deref().unwrap_or("?"),
                "OpenBLAS for CPU convolution GEMMs"
            );
            let name = format!("{name} ({} kernels)", core.as_deref().unwrap_or("?"));
            return Some(Blas {
                sgemm,
                name,
                _lib: lib,
            });
        }
    }
    tracing::info!("no OpenBLAS found: candle's GEMM for CPU convolutions");
    None
}

/// The OpenBLAS the CPU path uses, or `None` where candle's GEMM runs (none found, or
/// `MINTFRAME_BLAS=off`).
pub fn in_use() -> Option<&'static str> {
    blas().map(|b| b.name.as_str())
}

/// Whether [`sgemm`] will run (OpenBLAS found and not turned off).
pub(crate) fn available() -> bool {
    blas().is_some()
}

/// How `B` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B {
    /// k×n, rows `ldb` apart.
    Plain,
    /// n×k, rows `ldb` apart, used as its transpose (a linear layer's weight).
    Transposed,
}

/// `C = A · B` for row-major `A` (m×k, rows `lda` apart) and `B` (see [`B`]) into `C` (m×n, rows
/// `ldc` apart). Returns false, touching nothing, when OpenBLAS is not available.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    layout_b: B,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) -> bool {
    let Some(blas) = blas() else {
        return false;
    };
    let fits = |x: usize| c_int::try_from(x).is_ok();
    let in_bounds = m > 0
        && n > 0
        && k > 0
        && lda >= k
        && ldc >= n
        && a.len() >= (m - 1) * lda + k
        && c.len() >= (m - 1) * ldc + n
        && match layout_b {
            B::Plain => ldb >= n && b.len() >= (k - 1) * ldb + n,
            B::Transposed => ldb >= k && b.len() >= (n - 1) * ldb + k,
        };
    if !in_bounds || ![m, n, k, lda, ldb, ldc].into_iter().all(fits) {
        return false;
    }
    #[allow(
        unsafe_code,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap
    )]
    // SAFETY: the three slices were checked above to hold every element the call reads or
    // writes for these sizes and strides, and each size fits a C int.
    unsafe {
        (blas.sgemm)(
            ROW_MAJOR,
            NO_TRANS,
            match layout_b {
                B::Plain => NO_TRANS,
                B::Transposed => TRANS,
            },
            m as c_int,
            n as c_int,
            k as c_int,
            1.0,
            a.as_ptr(),
            lda as c_int,
            b.as_ptr(),
            ldb as c_int,
            0.0,
            c.as_mut_ptr(),
            ldc as c_int,
        );
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn sgemm_multiplies_strided_row_major_matrices_or_declines() {
        // A 2×3 inside rows of 4, B 3×2 inside rows of 3, C 2×2 inside rows of 5.
        let a = [1.0, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0, 9.0];
        let b = [1.0, 0.0, 9.0, 0.0, 1.0, 9.0, 1.0, 1.0, 9.0];
        let mut c = [7.0f32; 10];
        use super::B;
        if !super::sgemm(B::Plain, 2, 2, 3, &a, 4, &b, 3, &mut c, 5) {
            assert!(!super::available(), "declined though OpenBLAS is there");
            return;
        }
        assert_eq!(c, [4.0, 5.0, 7.0, 7.0, 7.0, 10.0, 11.0, 7.0, 7.0, 7.0]);
        // Slices too short for the sizes are declined, not read past.
        assert!(!super::sgemm(
            B::Plain,
            2,
            2,
            3,
            &a[..6],
            4,
            &b,
            3,
            &mut c,
            5
        ));
        // The same product with B given as its transpose (2×3, rows of 3).
        let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut c2 = [0.0f32; 4];
        assert!(super::sgemm(
            B::Transposed,
            2,
            2,
            3,
            &a,
            4,
            &bt,
            3,
            &mut c2,
            2
        ));
        assert_eq!(c2, [4.0, 5.0, 10.0, 11.0]);
    }
}
