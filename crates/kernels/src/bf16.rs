//! bf16 GEMMs on CPUs with AVX-512 BF16 (`vdpbf16ps`: AMD Zen 4 and later, Intel Cooper Lake
//! and Sapphire Rapids): the weights of convolutions and linear layers are kept in bf16 (half
//! the memory of f32) and each product of a bf16 pair is summed in f32. The activations are
//! rounded to bf16 as they are packed for the product, as oneDNN and OpenVINO's bf16 hint do;
//! everything between the products (norms, attention, activations) stays f32.
//!
//! A CPU without the instructions never takes this path (the engine's `--dtype bf16` then runs
//! in f32 and says so once). Proven against the f64 product of the same rounded operands here,
//! and against diffusers end to end by the engine's parity tests within the 16-bit bound.

use std::sync::OnceLock;

/// Whether this CPU runs the bf16 kernels (and `MINTFRAME_BF16` is not `off`).
pub fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        if std::env::var("MINTFRAME_BF16").is_ok_and(|v| v == "off") {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// f32 → bf16 bits, rounded to nearest even (what `vcvtne2ps2bf16` does); NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// How the f32 operand `B` (k × n) is stored.
#[derive(Debug, Clone, Copy)]
pub enum BLayout {
    /// `B[k][n] = b[k·ld + n]` (a convolution's patches).
    Rows { ld: usize },
    /// `B[k][n] = b[n·ld + k]` (a linear layer's input, rows of tokens).
    Cols { ld: usize },
}

/// Rows of `A` per micro-kernel, columns per micro-kernel (two 16-lane vectors), k pairs per
/// block (a micro-panel of B is then 32 KB, for L1), columns per task.
const MR: usize = 4;
const NR: usize = 64;
const KC: usize = 128;
const NC: usize = 128;

/// `C[i][j] = Σₖ A[i][k]·B[k][j]` with `A` (m × k) bf16 bits, row-major, `k` even; `B` f32 as
/// `layout` says; `C[i][j]` at `c[i·rs + j·cs]`, overwritten. Returns false, touching nothing,
/// where the CPU lacks the instructions or the operands do not fit the sizes.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    a: &[u16],
    m: usize,
    k: usize,
    b: &[f32],
    layout: BLayout,
    n: usize,
    c: &mut [f32],
    rs: usize,
    cs: usize,
) -> bool {
    if !available() || m == 0 || n == 0 || k == 0 || !k.is_multiple_of(2) || a.len() < m * k {
        return false;
    }
    let b_fits = match layout {
        BLayout::Rows { ld } => ld >= n && b.len() >= (k - 1) * ld + n,
        BLayout::Cols { ld } => ld >= k && b.len() >= (n - 1) * ld + k,
    };
    if !b_fits || c.len() <= (m - 1) * rs + (n - 1) * cs {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        x86::gemm(a, m, k, b, layout, n, c, rs, cs);
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use rayon::prelude::*;

    use super::{BLayout, KC, MR, NC, NR, to_bf16};

    /// `C`'s base, shared by the column panels: each writes only its own columns.
    #[derive(Clone, Copy)]
    struct Out(*mut f32);
    // SAFETY: the panels write disjoint sets of `C`'s elements (their own columns), and the
    // slice outlives the parallel loop that uses this.
    unsafe impl Send for Out {}
    unsafe impl Sync for Out {}

    impl Out {
        // A method, so closures capture the whole (Sync) wrapper, not its raw field.
        fn ptr(self) -> *mut f32 {
            self.0
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm(
        a: &[u16],
        m: usize,
        k: usize,
        b: &[f32],
        layout: BLayout,
        n: usize,
        c: &mut [f32],
        rs: usize,
        cs: usize,
    ) {
        let kp = k / 2;
        let out = Out(c.as_mut_ptr());
        let panels = n.div_ceil(NC);
        (0..panels).into_par_iter().for_each(|panel| {
            let j0 = panel * NC;
            let nc = NC.min(n - j0);
            let width = nc.div_ceil(NR) * NR;
            // B's panel as bf16 pairs: micro-panel by micro-panel, [pair][NR columns].
            let mut packed = vec![0u32; width * kp];
            pack_b(b, layout, kp, j0, nc, &mut packed);
            let mut tile = vec![0f32; m * width];
            // SAFETY: the caller checked the instructions are there.
            unsafe { panel_product(a, m, kp, &packed, width, &mut tile) };
            let base = out.ptr();
            for i in 0..m {
                for j in 0..nc {
                    // SAFETY: `gemm` checked that `c` holds every (i, j) of an m × n result at
                    // these strides; this panel owns columns j0..j0+nc.
                    unsafe { *base.add(i * rs + (j0 + j) * cs) = tile[i * width + j] };
                }
            }
        });
    }

    /// Packs columns `j0..j0+nc` of B into `packed` (`width/NR` micro-panels of `kp × NR`
    /// pairs; columns past `nc` stay zero).
    fn pack_b(b: &[f32], layout: BLayout, kp: usize, j0: usize, nc: usize, packed: &mut [u32]) {
        for (mp, dst) in packed.chunks_mut(kp * NR).enumerate() {
            let c0 = mp * NR;
            if c0 >= nc {
                break;
            }
            let cols = NR.min(nc - c0);
            match layout {
                BLayout::Rows { ld } => {
                    for p in 0..kp {
                        let r0 = &b[2 * p * ld + j0 + c0..][..cols];
                        let r1 = &b[(2 * p + 1) * ld + j0 + c0..][..cols];
                        let d = &mut dst[p * NR..][..NR];
                        if cols == NR {
                            // SAFETY: AVX-512 BF16 and BW are there (checked by `gemm`); both
                            // rows hold NR values and `d` NR pairs.
                            unsafe {
                                interleave_32(&r0[..32], &r1[..32], &mut d[..32]);
                                interleave_32(&r0[32..], &r1[32..], &mut d[32..]);
                            }
                        } else {
                            for q in 0..cols {
                                d[q] =
                                    u32::from(to_bf16(r0[q])) | (u32::from(to_bf16(r1[q])) << 16);
                            }
                        }
                    }
                }
                BLayout::Cols { ld } => {
                    for q in 0..cols {
                        let col = &b[(j0 + c0 + q) * ld..][..2 * kp];
                        for p in 0..kp {
                            dst[p * NR + q] = u32::from(to_bf16(col[2 * p]))
                                | (u32::from(to_bf16(col[2 * p + 1])) << 16);
                        }
                    }
                }
            }
        }
    }

    /// 32 columns of two rows into 32 pairs: lane q = (r0[q], r1[q]).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn interleave_32(r0: &[f32], r1: &[f32], d: &mut [u32]) {
        // vcvtne2ps2bf16 puts the second operand's 16 values in the low half: [r0 | r1];
        // the permutation takes them in turns, r0[q] into the low 16 bits of lane q.
        let idx_lo = _mm512_set_epi16(
            31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
            4, 19, 3, 18, 2, 17, 1, 16, 0,
        );
        for half in 0..2 {
            // SAFETY: `r0`, `r1` hold 32 values and `d` 32 lanes (the caller's contract).
            unsafe {
                let a = _mm512_loadu_ps(r0.as_ptr().add(16 * half));
                let bb = _mm512_loadu_ps(r1.as_ptr().add(16 * half));
                let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(bb, a));
                let pairs = _mm512_permutexvar_epi16(idx_lo, both);
                _mm512_storeu_si512(d.as_mut_ptr().add(16 * half).cast(), pairs);
            }
        }
    }

    /// `tile (m × width) = A (m × 2kp, bf16) · packed`, k-blocks of KC pairs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn panel_product(
        a: &[u16],
        m: usize,
        kp: usize,
        packed: &[u32],
        width: usize,
        tile: &mut [f32],
    ) {
        let a32 = a.as_ptr().cast::<u32>();
        for pc in (0..kp).step_by(KC) {
            let kc = KC.min(kp - pc);
            for ib in (0..m).step_by(MR) {
                let rows = MR.min(m - ib);
                // Rows past m repeat the last one; their sums are not stored.
                let arow: [*const u32; MR] = std::array::from_fn(|r| {
                    // SAFETY: row min(ib + r, m − 1) and pair pc lie inside `a` (m × kp pairs).
                    unsafe { a32.add((ib + r.min(rows - 1)) * kp + pc) }
                });
                for mp in 0..width / NR {
                    let bp = &packed[mp * kp * NR + pc * NR..][..kc * NR];
                    let t = &mut tile[ib * width + mp * NR..];
                    // SAFETY: the instructions are there (this function's own contract).
                    unsafe { micro(&arow, bp, kc, t, width, rows, pc > 0) };
                }
            }
        }
    }

    /// MR × NR of the tile: `acc` (or 0 when the first k-block) + A's rows · the micro-panel.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn micro(
        arow: &[*const u32; MR],
        bp: &[u32],
        kc: usize,
        t: &mut [f32],
        ldt: usize,
        rows: usize,
        acc: bool,
    ) {
        const {
            assert!(
                MR == 4 && NR == 64,
                "the loop below is written out for 4 × 64"
            )
        };
        let mut c = [[_mm512_setzero_ps(); 4]; MR];
        if acc {
            for (r, cr) in c.iter_mut().enumerate().take(rows) {
                for (v, cv) in cr.iter_mut().enumerate() {
                    // SAFETY: row r of the tile has NR values from here (width is a multiple
                    // of NR).
                    unsafe { *cv = _mm512_loadu_ps(t.as_ptr().add(r * ldt + 16 * v)) };
                }
            }
        }
        // Pointers stepped, never indexed or multiplied, in the loop: indexing, `add` and `*`
        // carry checks in builds with debug assertions and overflow checks (the dev profile),
        // and those kept the accumulators out of registers.
        let [mut a0, mut a1, mut a2, mut a3] = *arow;
        let mut bo = bp.as_ptr();
        let [mut c00, mut c01, mut c02, mut c03] = c[0];
        let [mut c10, mut c11, mut c12, mut c13] = c[1];
        let [mut c20, mut c21, mut c22, mut c23] = c[2];
        let [mut c30, mut c31, mut c32, mut c33] = c[3];
        for _ in 0..kc {
            // SAFETY: the micro-panel holds kc × NR pairs and each A row kc pairs from its
            // pointer, so every pointer stays inside its operand until the last step; the bf16
            // vector types are bit-for-bit the integer vectors loaded.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bo.cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(bo.wrapping_add(16).cast()));
                let b2: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(bo.wrapping_add(32).cast()));
                let b3: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(bo.wrapping_add(48).cast()));
                macro_rules! row {
                    ($a:ident, $x0:ident, $x1:ident, $x2:ident, $x3:ident) => {
                        let av: __m512bh =
                            std::mem::transmute(_mm512_broadcastd_epi32(_mm_loadu_si32($a.cast())));
                        $x0 = _mm512_dpbf16_ps($x0, av, b0);
                        $x1 = _mm512_dpbf16_ps($x1, av, b1);
                        $x2 = _mm512_dpbf16_ps($x2, av, b2);
                        $x3 = _mm512_dpbf16_ps($x3, av, b3);
                        $a = $a.wrapping_add(1);
                    };
                }
                row!(a0, c00, c01, c02, c03);
                row!(a1, c10, c11, c12, c13);
                row!(a2, c20, c21, c22, c23);
                row!(a3, c30, c31, c32, c33);
            }
            bo = bo.wrapping_add(NR);
        }
        let c = [
            [c00, c01, c02, c03],
            [c10, c11, c12, c13],
            [c20, c21, c22, c23],
            [c30, c31, c32, c33],
        ];
        for (r, cr) in c.iter().enumerate().take(rows) {
            for (v, cv) in cr.iter().enumerate() {
                // SAFETY: as for the loads above.
                unsafe { _mm512_storeu_ps(t.as_mut_ptr().add(r * ldt + 16 * v), *cv) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn from_bf16(b: u16) -> f32 {
        f32::from_bits(u32::from(b) << 16)
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: to the even one, 1.
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(to_bf16(f32::INFINITY), 0x7f80);
    }

    /// Every shape edge (rows not a multiple of 8, columns of 32 or 128, k beyond one block)
    /// and both layouts of B, against the f32 product of the same bf16-rounded values.
    #[test]
    fn the_bf16_product_equals_the_f32_product_of_the_rounded_values() {
        if !available() {
            eprintln!("this CPU has no AVX-512 BF16: the bf16 GEMM is not run here");
            assert!(!gemm(
                &[0; 4],
                2,
                2,
                &[0.0; 4],
                BLayout::Rows { ld: 2 },
                2,
                &mut [0.0; 4],
                2,
                1
            ));
            return;
        }
        for &(m, k, n) in &[
            (1, 2, 1),
            (13, 70, 37),
            (9, 600, 131),
            (40, 1024, 300),
            (3, 2, 200),
        ] {
            let a32 = lcg(1, m * k);
            let a: Vec<u16> = a32.iter().map(|&x| to_bf16(x)).collect();
            let b = lcg(2, k * n);
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let mut want = vec![0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = (0..k)
                        .map(|p| {
                            f64::from(from_bf16(a[i * k + p]))
                                * f64::from(from_bf16(to_bf16(b[p * n + j])))
                        })
                        .sum();
                }
            }
            let scale = want.iter().fold(0f64, |s, v| s.max(v.abs())).max(1e-9);
            let mut rows = vec![f32::NAN; m * n];
            assert!(gemm(
                &a,
                m,
                k,
                &b,
                BLayout::Rows { ld: n },
                n,
                &mut rows,
                n,
                1
            ));
            let mut cols = vec![f32::NAN; m * n];
            // The transposed result, from B stored by columns: C'[j][i] at j·m + i.
            assert!(gemm(
                &a,
                m,
                k,
                &bt,
                BLayout::Cols { ld: k },
                n,
                &mut cols,
                1,
                m
            ));
            for i in 0..m {
                for j in 0..n {
                    let w = want[i * n + j];
                    let e1 = (f64::from(rows[i * n + j]) - w).abs() / scale;
                    let e2 = (f64::from(cols[j * m + i]) - w).abs() / scale;
                    assert!(
                        e1 < 1e-5 && e2 < 1e-5,
                        "{m}×{k}×{n} at ({i}, {j}): {e1:e} {e2:e}"
                    );
                }
            }
        }
        // Odd k and short operands are declined, nothing written.
        let mut c = vec![7.0f32; 4];
        assert!(!gemm(
            &[0; 6],
            2,
            3,
            &[0.0; 6],
            BLayout::Rows { ld: 2 },
            2,
            &mut c,
            2,
            1
        ));
        assert!(!gemm(
            &[0; 4],
            2,
            2,
            &[0.0; 3],
            BLayout::Rows { ld: 2 },
            2,
            &mut c,
            2,
            1
        ));
        assert_eq!(c, vec![7.0; 4]);
    }
}
