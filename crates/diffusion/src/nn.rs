//! The layers the models are made of, on candle-core tensors.

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, D, DType, Device, Layout, Shape, Storage, Tensor,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::weights::Vb;

/// How convolutions pad at the borders. Circular padding on an axis makes the image wrap on
/// that axis, which is what seamless tiles need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Padding {
    pub circular_x: bool,
    pub circular_y: bool,
}

impl Padding {
    pub const ZEROS: Padding = Padding {
        circular_x: false,
        circular_y: false,
    };
    pub const CIRCULAR: Padding = Padding {
        circular_x: true,
        circular_y: true,
    };

    pub fn is_tiling(self) -> bool {
        self.circular_x || self.circular_y
    }
}

/// A low-rank pair trained beside a frozen layer: `y = layer(x) + scale · up(down(x))` with
/// `scale = alpha / rank` (kohya's LoRA; LoCon when the layer is a convolution, whose `down`
/// has the layer's kernel and `up` is 1×1). Kept apart from the frozen weight rather than
/// merged into it, so an optimiser step on `down`/`up` (candle `Var`s, updated in place) is
/// seen by the next forward pass without rebuilding the model.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub down: Tensor,
    pub up: Tensor,
    pub scale: f64,
}

/// The output of a frozen layer, computed without a graph, given back to the graph with the
/// layer's input gradient only. candle's own backward of `conv2d` and `matmul` also computes
/// the gradient of the weight — wasted on a frozen layer, and for a 3×3 convolution it runs
/// candle's direct-loop `conv_transpose2d` on the CPU. Training a LoRA, every base layer is
/// frozen, so this halves the backward work and moves it onto im2col + GEMM.
struct Frozen {
    /// The output, taken (not copied twice) by the forward below.
    y: std::sync::Mutex<Option<Tensor>>,
    grad: InputGrad,
}

/// The gradient of a layer's input from the gradient of its output.
type InputGrad = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// The storage of an output computed outside the graph, taken from its slot (so the slot's copy
/// is freed as the op's own result takes its place).
fn take_output(slot: &std::sync::Mutex<Option<Tensor>>) -> candle_core::Result<(Storage, Shape)> {
    let y = slot
        .lock()
        .map_err(|_| candle_core::Error::Msg("layer output poisoned".into()))?
        .take()
        .ok_or_else(|| candle_core::Error::Msg("layer output taken twice".into()))?;
    let shape = y.shape().clone();
    let (storage, layout) = y.storage_and_layout();
    let out = match &*storage {
        Storage::Cpu(s) => Storage::Cpu(s.try_clone(layout)?),
        Storage::Cuda(s) => Storage::Cuda(s.try_clone(layout)?),
        Storage::Metal(s) => Storage::Metal(s.try_clone(layout)?),
    };
    Ok((out, shape))
}

/// [`take_output`] for a CPU forward pass.
fn cpu_output(slot: &std::sync::Mutex<Option<Tensor>>) -> candle_core::Result<(CpuStorage, Shape)> {
    match take_output(slot)? {
        (Storage::Cpu(s), shape) => Ok((s, shape)),
        _ => Err(candle_core::Error::Msg(
            "layer output on another device".into(),
        )),
    }
}

/// [`take_output`] for a CUDA forward pass.
fn cuda_output(
    slot: &std::sync::Mutex<Option<Tensor>>,
) -> candle_core::Result<(CudaStorage, Shape)> {
    match take_output(slot)? {
        (Storage::Cuda(s), shape) => Ok((s, shape)),
        _ => Err(candle_core::Error::Msg(
            "layer output on another device".into(),
        )),
    }
}

thread_local! {
    /// Off while a block runs forward for activation recomputation: its adapters are then used
    /// as plain values, so no graph (and none of its activations) is kept.
    static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Whether trainable tensors build a graph on this thread now.
pub fn recording() -> bool {
    RECORDING.with(std::cell::Cell::get)
}

/// Runs `f` with no graph recorded (see [`recording`]).
pub fn without_graph<T>(f: impl FnOnce() -> T) -> T {
    let before = RECORDING.with(|r| r.replace(false));
    let out = f();
    RECORDING.with(|r| r.set(before));
    out
}

/// A block's forward, and a place for the gradients its backward finds for trainable tensors
/// that the outer graph never saw.
pub type BlockFn = std::sync::Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// Where recomputed blocks leave the gradients of the trainable tensors inside them.
pub trait GradSink: Send + Sync + std::fmt::Debug {
    fn add(&self, grads: &candle_core::backprop::GradStore);
}

/// Activation recomputation (gradient checkpointing): the block runs forward with no graph, so
/// its activations are freed at once; the backward runs it forward again with a graph, takes the
/// gradients of its input and of its trainable tensors (handed to `sink`), and lets it go.
/// Peak memory falls from every activation of the model to one block's.
struct Recompute {
    f: BlockFn,
    y: std::sync::Mutex<Option<Tensor>>,
    sink: std::sync::Arc<dyn GradSink>,
}

impl candle_core::CustomOp2 for Recompute {
    fn name(&self) -> &'static str {
        "recompute"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_output(&self.y)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda_output(&self.y)
    }

    fn bwd(
        &self,
        x: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let xv = candle_core::Var::from_tensor(&x.detach())?;
        let y = (self.f)(xv.as_tensor()).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let grads = (y * grad.detach())?.sum_all()?.backward()?;
        self.sink.add(&grads);
        Ok((grads.get(xv.as_tensor()).cloned(), None))
    }
}

/// `f(x)`, recomputed in the backward pass when `sink` is given and a graph is being recorded.
pub fn recompute(
    x: &Tensor,
    f: BlockFn,
    sink: Option<&std::sync::Arc<dyn GradSink>>,
) -> Result<Tensor> {
    match sink {
        Some(sink) if recording() && !x.device().is_metal() => {
            let y = without_graph(|| f(&x.detach()))?.contiguous()?;
            // A one-element variable, never read: it keeps the block's node in the graph (so
            // its backward runs) even when the block's input needs no gradient.
            let anchor = candle_core::Var::zeros(1, DType::F32, x.device())?;
            Ok(x.apply_op2(
                anchor.as_tensor(),
                Recompute {
                    f,
                    y: std::sync::Mutex::new(Some(y)),
                    sink: std::sync::Arc::clone(sink),
                },
            )?)
        }
        _ => f(x),
    }
}

impl CustomOp1 for Frozen {
    fn name(&self) -> &'static str {
        "frozen-layer"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_output(&self.y)
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda_output(&self.y)
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some((self.grad)(grad)?))
    }
}

/// `forward(x)` of a layer with weight `w`; when `x` is part of a graph being trained and `w` is
/// frozen, its gradient is `grad(dy)` alone. Otherwise this is just `forward(x)` (a trainable
/// weight keeps candle's own backward, which gives its gradient too).
fn frozen(
    x: &Tensor,
    w: &Tensor,
    forward: impl FnOnce(&Tensor) -> Result<Tensor>,
    grad: impl Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() || w.track_op() || x.device().is_metal() {
        return forward(x);
    }
    let y = forward(&x.detach())?.contiguous()?;
    Ok(x.apply_op1(Frozen {
        y: std::sync::Mutex::new(Some(y)),
        grad: Box::new(grad),
    })?)
}

/// The input gradient of a convolution (kernel `w`, `(c_out, c_in, k, k)`, zero padding `p`,
/// `stride`) for an input of `(h, w)`: a stride-1 convolution of the output gradient — zeros
/// put between its pixels for stride 2 — with the kernel flipped and transposed.
fn conv_input_grad(
    dy: &Tensor,
    w: &Tensor,
    p: usize,
    stride: usize,
    in_hw: (usize, usize),
) -> candle_core::Result<Tensor> {
    let k = w.dim(2)?;
    let rev = Tensor::arange(0u32, k as u32, w.device())?.flip(&[0])?;
    let wt = w
        .transpose(0, 1)?
        .contiguous()?
        .index_select(&rev, 2)?
        .index_select(&rev, 3)?
        .contiguous()?;
    let dy = if stride == 1 {
        dy.clone()
    } else {
        let (b, c, h, ww) = dy.dims4()?;
        let z = dy.zeros_like()?;
        let rows = Tensor::stack(&[dy, &z], 3)?.reshape((b, c, h * 2, ww))?;
        let z = rows.zeros_like()?;
        Tensor::stack(&[&rows, &z], 4)?.reshape((b, c, h * 2, ww * 2))?
    };
    let pad = k - 1;
    // The full correlation, then the window that lines up with the (unpadded) input.
    let g = dy.conv2d(&wt, pad, 1, 1, 1)?;
    let g = g.narrow(2, p, in_hw.0)?.narrow(3, p, in_hw.1)?;
    Ok(g)
}

impl Adapter {
    /// `down` and `up` as this thread uses them now: the trainable tensors, or plain copies of
    /// their values while no graph is recorded.
    fn tensors(&self) -> (Tensor, Tensor) {
        if recording() {
            (self.down.clone(), self.up.clone())
        } else {
            (self.down.detach(), self.up.detach())
        }
    }
}

fn matmul_any(x: &Tensor, w_t: &Tensor) -> Result<Tensor> {
    Ok(match x.rank() {
        3 => x.broadcast_matmul(w_t)?,
        _ => x.matmul(w_t)?,
    })
}

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    adapter: Option<Adapter>,
}

impl Linear {
    pub fn new(vb: &Vb, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let weight = vb.gemm_weight(&[out_dim, in_dim], "weight")?;
        let bias = if bias {
            Some(vb.get(&[out_dim], "bias")?)
        } else {
            None
        };
        let adapter = vb.adapter(&[in_dim], out_dim)?;
        Ok(Linear {
            weight,
            bias,
            adapter,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.clone();
        let y = frozen(
            x,
            &self.weight,
            |x| {
                let y = if cpu_bf16_inference(x, &self.weight) {
                    x.apply_op2_no_bwd(&self.weight, &LinearGemm)?
                } else if cpu_f32_inference(x, &self.weight) && crate::blas::available() {
                    linear_openblas(x, &self.weight)?
                } else {
                    matmul_any(x, &self.weight.t()?.to_dtype(x.dtype())?)?
                };
                Ok(match &self.bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            },
            move |dy| match dy.rank() {
                3 => dy.broadcast_matmul(&w),
                _ => dy.matmul(&w),
            },
        )?;
        match &self.adapter {
            None => Ok(y),
            Some(a) => {
                let (down, up) = a.tensors();
                let d = matmul_any(&x.to_dtype(down.dtype())?, &down.t()?)?;
                let u = (matmul_any(&d, &up.t()?)? * a.scale)?;
                Ok((y + u.to_dtype(x.dtype())?)?)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    mode: Padding,
    adapter: Option<Adapter>,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: &Vb,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        mode: Padding,
    ) -> Result<Conv2d> {
        let mut conv = Conv2d::without_bias(vb, c_in, c_out, kernel, stride, padding, mode)?;
        conv.bias = vb.get(&[c_out], "bias")?;
        conv.adapter = vb.adapter(&[c_in, kernel, kernel], c_out)?;
        Ok(conv)
    }

    /// A convolution stored without a bias (TAESD's inner ones): a zero bias, so one forward
    /// serves both.
    #[allow(clippy::too_many_arguments)]
    pub fn without_bias(
        vb: &Vb,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        mode: Padding,
    ) -> Result<Conv2d> {
        let weight = vb.gemm_weight(&[c_out, c_in, kernel, kernel], "weight")?;
        let bias = Tensor::zeros(c_out, DType::F32, weight.device())?.to_dtype(vb.dtype())?;
        Ok(Conv2d {
            weight,
            bias,
            kernel,
            stride,
            padding,
            mode,
            adapter: None,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_padded(x, self.padding, self.padding, self.padding, self.padding)
    }

    /// Where its weights live.
    pub fn device(&self) -> Device {
        self.weight.device().clone()
    }

    /// Convolution with explicit (top, bottom, left, right) padding; the VAE's downsampler pads
    /// only bottom and right.
    pub fn forward_padded(
        &self,
        x: &Tensor,
        top: usize,
        bottom: usize,
        left: usize,
        right: usize,
    ) -> Result<Tensor> {
        let (input, p) = if self.kernel == 1 && top + bottom + left + right == 0 {
            (x.clone(), 0)
        } else if !self.mode.is_tiling() && top == bottom && left == right && top == left {
            (x.clone(), top)
        } else {
            let x = pad(x, 2, top, bottom, self.mode.circular_y)?;
            (pad(&x, 3, left, right, self.mode.circular_x)?, 0)
        };
        let (w, stride) = (self.weight.clone(), self.stride);
        let hw = (input.dim(2)?, input.dim(3)?);
        let y = frozen(
            &input,
            &self.weight,
            |i| {
                let y = if cpu_bf16_inference(i, &self.weight)
                    || (self.kernel > 1 && cpu_f32_inference(i, &self.weight))
                {
                    conv2d_weight_first(i, &self.weight, p, self.stride)?
                } else {
                    i.conv2d(&self.weight.to_dtype(i.dtype())?, p, self.stride, 1, 1)?
                };
                Ok(y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?)
            },
            move |dy| conv_input_grad(dy, &w, p, stride, hw),
        )?;
        match &self.adapter {
            None => Ok(y),
            Some(a) => {
                let (down, up) = a.tensors();
                let d = input
                    .to_dtype(down.dtype())?
                    .conv2d(&down, p, self.stride, 1, 1)?;
                let u = (d.conv2d(&up, 0, 1, 1, 1)? * a.scale)?;
                Ok((y + u.to_dtype(x.dtype())?)?)
            }
        }
    }
}

/// `x · wᵀ` for `x` of any rank ending in `k` and `w` `(n, k)`, one OpenBLAS `sgemm`.
fn linear_openblas(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    Ok(x.apply_op2_no_bwd(&w, &LinearBlas)?)
}

/// The values of two contiguous f32 tensors, as an op on both reads them.
/// A layer's weight as our GEMMs take it.
enum Weight<'a> {
    F32(&'a [f32]),
    /// bf16 bits (`--dtype bf16`, [`crate::bf16`]).
    Bf16(&'a [u16]),
}

/// The f32 input and the weight of one of our CPU ops, both contiguous.
fn f32_pair<'a>(
    xs: &'a CpuStorage,
    xl: &Layout,
    ws: &'a CpuStorage,
    wl: &Layout,
    op: &str,
) -> candle_core::Result<(&'a [f32], Weight<'a>)> {
    use half::slice::HalfFloatSliceExt;
    match (xs, xl.contiguous_offsets(), ws, wl.contiguous_offsets()) {
        (CpuStorage::F32(x), Some((x0, x1)), CpuStorage::F32(w), Some((w0, w1))) => {
            Ok((&x[x0..x1], Weight::F32(&w[w0..w1])))
        }
        (CpuStorage::F32(x), Some((x0, x1)), CpuStorage::BF16(w), Some((w0, w1))) => {
            Ok((&x[x0..x1], Weight::Bf16(w[w0..w1].reinterpret_cast())))
        }
        _ => candle_core::bail!("{op} takes a contiguous f32 input and f32 or bf16 weight"),
    }
}

/// `y = x · wᵀ` for a bf16 weight `(n, k)` through [`mintframe_kernels::bf16::gemm`].
struct LinearGemm;

impl candle_core::CustomOp2 for LinearGemm {
    fn name(&self) -> &'static str {
        "linear-bf16"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = f32_pair(xs, xl, ws, wl, self.name())?;
        let Weight::Bf16(w) = w else {
            candle_core::bail!("linear-bf16 takes a bf16 weight")
        };
        let (n, k) = wl.shape().dims2()?;
        let mut dims = xl.shape().dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("linear-bf16: input {dims:?} does not end in {k}")
        }
        let m = xl.shape().elem_count() / k.max(1);
        let mut out = vec![0f32; m * n];
        // (x · wᵀ)ᵀ = w · xᵀ: the weight's rows are the bf16 operand, the tokens its columns,
        // written back transposed.
        let layout = mintframe_kernels::bf16::BLayout::Cols { ld: k };
        if !mintframe_kernels::bf16::gemm(w, n, k, x, layout, m, &mut out, 1, n) {
            candle_core::bail!("the bf16 kernels declined a {n}×{k}×{m} GEMM")
        }
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

struct LinearBlas;

impl candle_core::CustomOp2 for LinearBlas {
    fn name(&self) -> &'static str {
        "linear-openblas"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = f32_pair(xs, xl, ws, wl, self.name())?;
        let (n, k) = wl.shape().dims2()?;
        let Weight::F32(w) = w else {
            candle_core::bail!("linear-openblas takes an f32 weight")
        };
        let mut dims = xl.shape().dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("linear-openblas: input {dims:?} does not end in {k}")
        }
        let m = xl.shape().elem_count() / k.max(1);
        let mut out = vec![0f32; m * n];
        let ran = crate::blas::sgemm(crate::blas::B::Transposed, m, n, k, x, k, w, k, &mut out, n);
        if !ran {
            candle_core::bail!("OpenBLAS declined a {m}×{k}×{n} GEMM")
        }
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// Whether our CPU kernels take this layer ([`conv2d_weight_first`], [`linear_openblas`]): f32
/// on the CPU, outside autograd (a frozen layer's forward runs on a detached input; a trained
/// weight keeps candle's op).
fn cpu_bf16_inference(x: &Tensor, w: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::BF16 && !x.track_op()
}

fn cpu_f32_inference(x: &Tensor, w: &Tensor) -> bool {
    x.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && !x.track_op()
        && !w.track_op()
}

/// Most of the im2col matrix one GEMM takes, in f32 values: bounds the buffer of the VAE's
/// full-resolution convolutions (a 512² decode would want 1.2 GB) to a band of output rows.
const IM2COL_BUDGET: usize = 16 << 20;

/// A CPU convolution as `W · im2col(x)`: the weight `(c_out, c_in·k·k)` exactly as stored, times
/// the patches laid out `(c_in·k·k, pixels)`, so the GEMM writes NCHW directly. candle's own
/// CPU convolution re-orders the whole weight and transposes the whole input on every call,
/// single-threaded, and scatters its output; this re-orders nothing but the patches.
fn conv2d_weight_first(x: &Tensor, w: &Tensor, pad: usize, stride: usize) -> Result<Tensor> {
    let gemm_op = crate::blas::available() || w.dtype() == DType::BF16;
    conv2d_weight_first_in(x, w, pad, stride, IM2COL_BUDGET, gemm_op)
}

fn conv2d_weight_first_in(
    x: &Tensor,
    w: &Tensor,
    pad: usize,
    stride: usize,
    budget: usize,
    openblas: bool,
) -> Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let (c_out, c_in, k, k2) = w.dims4()?;
    if c_in != c || k != k2 || h + 2 * pad < k || wd + 2 * pad < k {
        return Ok(x.conv2d(&w.to_dtype(x.dtype())?, pad, stride, 1, 1)?);
    }
    let out_h = (h + 2 * pad - k) / stride + 1;
    let out_w = (wd + 2 * pad - k) / stride + 1;
    let kdim = c * k * k;
    let w2 = w.contiguous()?.reshape((c_out, kdim))?;
    let x = x.contiguous()?;
    if openblas {
        return Ok(x.apply_op2_no_bwd(
            &w2,
            &ConvBlas {
                k,
                stride,
                pad,
                out_h,
                out_w,
                budget,
            },
        )?);
    }
    let rows = (budget / (b * kdim * out_w).max(1)).clamp(1, out_h);
    let mut bands = Vec::with_capacity(out_h.div_ceil(rows));
    for row0 in (0..out_h).step_by(rows) {
        let n = rows.min(out_h - row0);
        let col = x.apply_op1_no_bwd(&Im2ColT {
            k,
            stride,
            pad,
            row0,
            rows: n,
            out_w,
        })?;
        bands.push(w2.broadcast_matmul(&col)?.reshape((b, c_out, n, out_w))?);
    }
    Ok(if bands.len() == 1 {
        bands.remove(0)
    } else {
        Tensor::cat(&bands, 2)?
    })
}

/// The patches of output rows `row0..row0+rows` as `(b, c·k·k, rows·out_w)`, zero padding `pad`
/// on every side: row `(ci·k + i)·k + j` holds input pixel `(y·stride + i − pad, x·stride + j −
/// pad)` of channel `ci` for every output pixel `(y, x)`, so each row is written left to right
/// from one input row.
struct Im2ColT {
    k: usize,
    stride: usize,
    pad: usize,
    row0: usize,
    rows: usize,
    out_w: usize,
}

impl CustomOp1 for Im2ColT {
    fn name(&self) -> &'static str {
        "im2col-weight-first"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(all), Some((start, end))) = (s, l.contiguous_offsets()) else {
            candle_core::bail!("im2col-weight-first takes a contiguous f32 tensor")
        };
        let x = &all[start..end];
        let (b, c, h, w) = l.shape().dims4()?;
        let kdim = c * self.k * self.k;
        let m = self.rows * self.out_w;
        let mut out = vec![0f32; b * kdim * m];
        for (bi, dst) in out.chunks_mut(kdim * m).enumerate() {
            self.fill(&x[bi * c * h * w..][..c * h * w], (c, h, w), dst);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, kdim, m))))
    }
}

impl Im2ColT {
    /// One item's patches (`x`: `(c, h, w)`) into `dst` (`c·k·k × rows·out_w`, zeroed).
    fn fill(&self, x: &[f32], (_, h, w): (usize, usize, usize), dst: &mut [f32]) {
        use rayon::prelude::*;
        let (k, stride, pad, out_w) = (self.k, self.stride, self.pad, self.out_w);
        let kk = k * k;
        let m = self.rows * out_w;
        dst.par_chunks_mut(m).enumerate().for_each(|(r, dst)| {
            let (ci, i, j) = (r / kk, (r % kk) / k, r % k);
            let plane = &x[ci * h * w..][..h * w];
            // The output columns whose input column x·stride + j − pad is inside the image.
            let first = pad.saturating_sub(j).div_ceil(stride);
            let last = if w + pad > j {
                ((w + pad - j - 1) / stride + 1).min(out_w)
            } else {
                0
            };
            for (orow, d) in dst.chunks_mut(out_w).enumerate() {
                let y = (self.row0 + orow) * stride + i;
                if y < pad || y - pad >= h || first >= last {
                    continue;
                }
                let src = &plane[(y - pad) * w..][..w];
                if stride == 1 {
                    let from = first + j - pad;
                    d[first..last].copy_from_slice(&src[from..from + (last - first)]);
                } else {
                    for (ox, v) in d.iter_mut().enumerate().take(last).skip(first) {
                        *v = src[ox * stride + j - pad];
                    }
                }
            }
        });
    }
}

/// The whole convolution in one op when OpenBLAS is there: per item, per band of output rows,
/// the patches, then one `sgemm` writing the band's columns of the NCHW output in place.
struct ConvBlas {
    k: usize,
    stride: usize,
    pad: usize,
    out_h: usize,
    out_w: usize,
    budget: usize,
}

impl candle_core::CustomOp2 for ConvBlas {
    fn name(&self) -> &'static str {
        "conv2d-openblas"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, weight) = f32_pair(xs, xl, ws, wl, self.name())?;
        let (b, c, h, w) = xl.shape().dims4()?;
        let (c_out, kdim) = wl.shape().dims2()?;
        let (out_h, out_w) = (self.out_h, self.out_w);
        let plane = out_h * out_w;
        let rows = (self.budget / (kdim * out_w).max(1)).clamp(1, out_h);
        let mut out = vec![0f32; b * c_out * plane];
        let mut col = vec![0f32; kdim * rows * out_w];
        for bi in 0..b {
            let item = &x[bi * c * h * w..][..c * h * w];
            let y = &mut out[bi * c_out * plane..][..c_out * plane];
            for row0 in (0..out_h).step_by(rows) {
                let n = rows.min(out_h - row0);
                let band = &mut col[..kdim * n * out_w];
                band.fill(0.0);
                let patches = Im2ColT {
                    k: self.k,
                    stride: self.stride,
                    pad: self.pad,
                    row0,
                    rows: n,
                    out_w,
                };
                patches.fill(item, (c, h, w), band);
                let cols = n * out_w;
                let ran = match weight {
                    Weight::F32(wt) => crate::blas::sgemm(
                        crate::blas::B::Plain,
                        c_out,
                        cols,
                        kdim,
                        wt,
                        kdim,
                        band,
                        cols,
                        &mut y[row0 * out_w..],
                        plane,
                    ),
                    Weight::Bf16(wb) => mintframe_kernels::bf16::gemm(
                        wb,
                        c_out,
                        kdim,
                        band,
                        mintframe_kernels::bf16::BLayout::Rows { ld: cols },
                        cols,
                        &mut y[row0 * out_w..],
                        plane,
                        1,
                    ),
                };
                if !ran {
                    candle_core::bail!("the GEMM declined a {c_out}×{kdim}×{} product", n * out_w)
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, c_out, out_h, out_w))))
    }
}

fn pad(x: &Tensor, dim: usize, before: usize, after: usize, circular: bool) -> Result<Tensor> {
    if before + after == 0 {
        return Ok(x.clone());
    }
    if !circular {
        return Ok(x.pad_with_zeros(dim, before, after)?);
    }
    let n = x.dim(dim)?;
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(x.narrow(dim, n - before, before)?);
    }
    parts.push(x.clone());
    if after > 0 {
        parts.push(x.narrow(dim, 0, after)?);
    }
    Ok(Tensor::cat(&parts, dim)?)
}

#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    pub fn new(vb: &Vb, groups: usize, channels: usize, eps: f64) -> Result<GroupNorm> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(crate::Error::InvalidRequest(format!(
                "group norm {vb:?}: {groups} groups do not divide {channels} channels; check norm_num_groups in config.json"
            )));
        }
        Ok(GroupNorm {
            weight: vb.get(&[channels], "weight")?,
            bias: vb.get(&[channels], "bias")?,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let (b, c, h, w) = x.dims4()?;
        // Statistics in f32 even for f16 models: sums over a 64×64×32 group overflow f16.
        let xs = x.to_dtype(DType::F32)?.reshape((b, self.groups, ()))?;
        let mean = xs.mean_keepdim(2)?;
        let xs = xs.broadcast_sub(&mean)?;
        let var = xs.sqr()?.mean_keepdim(2)?;
        let eps = if crate::mutation::active(crate::mutation::Mutation::GroupNormEps) {
            1e-2
        } else {
            self.eps
        };
        let xs = xs.broadcast_div(&(var + eps)?.sqrt()?)?;
        let xs = xs.reshape((b, c, h, w))?.to_dtype(dtype)?;
        Ok(xs
            .broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?)
    }
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(vb: &Vb, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: vb.get(&[dim], "weight")?,
            bias: vb.get(&[dim], "bias")?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let xs = x.to_dtype(DType::F32)?;
        let mean = xs.mean_keepdim(D::Minus1)?;
        let xs = xs.broadcast_sub(&mean)?;
        let var = xs.sqr()?.mean_keepdim(D::Minus1)?;
        let xs = xs
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .to_dtype(dtype)?;
        Ok(xs.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

/// Bytes one attention chunk may use for its score matrix. Queries are processed in slices so
/// the full N×N matrix never exists: at 512² SD1.5's first level has N = 4096 and 8 heads, which
/// would be 1 GiB per image in f32.
pub const ATTENTION_CHUNK_BYTES: usize = 64 << 20;

/// Scaled dot-product attention over `(batch·heads, n, d)` tensors, sliced over queries.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    if crate::mutation::active(crate::mutation::Mutation::Attention) {
        return attention_within(q, v, k, mask, ATTENTION_CHUNK_BYTES);
    }
    attention_within(q, k, v, mask, ATTENTION_CHUNK_BYTES)
}

fn attention_within(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    budget_bytes: usize,
) -> Result<Tensor> {
    let (bh, n_q, d) = q.dims3()?;
    let n_k = k.dim(1)?;
    let scale = 1.0 / (d as f64).sqrt();
    let elem = q.dtype().size_in_bytes().max(4);
    let per_query = bh * n_k * elem;
    let chunk = (budget_bytes / per_query.max(1)).clamp(1, n_q.max(1));
    if mask.is_none() && (q.track_op() || k.track_op() || v.track_op()) && !q.device().is_metal() {
        // Training: the output without a graph, and a backward that recomputes each slice's
        // probabilities, so the n×n matrix is never kept for the backward pass.
        let out = attention_within(&q.detach(), &k.detach(), &v.detach(), None, budget_bytes)?
            .contiguous()?;
        return Ok(q.apply_op3(
            k,
            v,
            SlicedAttention {
                out: std::sync::Mutex::new(Some(out)),
                chunk,
                scale,
            },
        )?);
    }
    let kt = k.t()?.contiguous()?;
    let mut outs = Vec::with_capacity(n_q.div_ceil(chunk));
    let mut start = 0;
    while start < n_q {
        let len = chunk.min(n_q - start);
        let qc = q.narrow(1, start, len)?;
        // Mask and softmax in f32: f16 exponentials overflow on large scores, and the mask is
        // f32 whatever the model's dtype.
        let scores = (qc.matmul(&kt)? * scale)?.to_dtype(DType::F32)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(&m.narrow(0, start, len)?.to_dtype(DType::F32)?)?,
            None => scores,
        };
        // candle's fused softmax has no backward pass; while training (scores derived from a
        // variable) the composed one, whose gradient candle knows.
        let probs = if scores.track_op() {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        }
        .to_dtype(v.dtype())?;
        outs.push(probs.matmul(v)?);
        start += len;
    }
    Ok(Tensor::cat(&outs, 1)?)
}

/// Attention for training: its output is computed without a graph; its backward recomputes the
/// probabilities one slice of queries at a time (FlashAttention's backward, in candle ops), so
/// what training keeps is q, k, v and the output, never an n×n matrix — at 512² SD 1.5's first
/// level has n = 4096 and 8 heads: 512 MiB per matrix, several of them per attention.
struct SlicedAttention {
    out: std::sync::Mutex<Option<Tensor>>,
    chunk: usize,
    scale: f64,
}

impl candle_core::CustomOp3 for SlicedAttention {
    fn name(&self) -> &'static str {
        "sliced-attention"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_output(&self.out)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda_output(&self.out)
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        dout: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dt = q.dtype();
        let f = |t: &Tensor| t.detach().to_dtype(DType::F32);
        let (q, k, v, out, dout) = (f(q)?, f(k)?, f(v)?, f(out)?, f(dout)?);
        let n_q = q.dim(1)?;
        let kt = k.t()?.contiguous()?;
        let vt = v.t()?.contiguous()?;
        let mut dq = Vec::with_capacity(n_q.div_ceil(self.chunk));
        let mut dk = k.zeros_like()?;
        let mut dv = v.zeros_like()?;
        let mut start = 0;
        while start < n_q {
            let len = self.chunk.min(n_q - start);
            let qc = q.narrow(1, start, len)?;
            let doc = dout.narrow(1, start, len)?.contiguous()?;
            let oc = out.narrow(1, start, len)?;
            let p = candle_nn::ops::softmax_last_dim(&(qc.matmul(&kt)? * self.scale)?)?;
            dv = (dv + p.t()?.matmul(&doc)?)?;
            let dp = doc.matmul(&vt)?;
            let delta = (&doc * &oc)?.sum_keepdim(2)?;
            let ds = (p * dp.broadcast_sub(&delta)?)?;
            dq.push((ds.matmul(&k)? * self.scale)?);
            dk = (dk + (ds.t()?.matmul(&qc.contiguous()?)? * self.scale)?)?;
            start += len;
        }
        let dq = Tensor::cat(&dq, 1)?.to_dtype(dt)?;
        Ok((Some(dq), Some(dk.to_dtype(dt)?), Some(dv.to_dtype(dt)?)))
    }
}

/// `(b, n, heads·d)` → `(b·heads, n, d)`.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, n, c) = x.dims3()?;
    Ok(x.reshape((b, n, heads, c / heads))?
        .transpose(1, 2)?
        .reshape((b * heads, n, c / heads))?
        .contiguous()?)
}

/// `(b·heads, n, d)` → `(b, n, heads·d)`.
pub fn merge_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (bh, n, d) = x.dims3()?;
    Ok(x.reshape((bh / heads, heads, n, d))?
        .transpose(1, 2)?
        .reshape((bh / heads, n, heads * d))?)
}

/// Nearest-neighbour upsampling to `(th, tw)`. While training an exact 2× is a broadcast (whose
/// backward is a sum): candle's own backward of `upsample_nearest2d` is a grouped convolution
/// with one group per channel, which its CPU backend runs as that many separate convolutions.
pub fn upsample_nearest(x: &Tensor, th: usize, tw: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if x.track_op() && th == 2 * h && tw == 2 * w {
        return Ok(x
            .reshape((b, c, h, 1, w, 1))?
            .broadcast_as((b, c, h, 2, w, 2))?
            .reshape((b, c, th, tw))?);
    }
    Ok(x.upsample_nearest2d(th, tw)?)
}

pub fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::silu(x)?)
}

/// Sinusoidal embedding of `t` (shape `(b,)`), `dim` wide, cos first (diffusers'
/// `flip_sin_to_cos=True`, `downscale_freq_shift=0`).
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let device = t.device();
    let exponent: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp() as f32)
        .collect();
    let freqs = Tensor::from_vec(exponent, (1, half), device)?;
    let args = t
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs)?;
    if crate::mutation::active(crate::mutation::Mutation::SinCos) {
        return Ok(Tensor::cat(&[args.sin()?, args.cos()?], 1)?);
    }
    Ok(Tensor::cat(&[args.cos()?, args.sin()?], 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_weight_first_convolution_equals_candles_at_every_padding_stride_and_band() {
        let dev = Device::Cpu;
        // (c_in, c_out, h, w, k, pad, stride): odd sizes, padding wider than some rows, a
        // kernel as wide as the padded input, stride 2 with and without padding.
        let cases = [
            (3, 5, 7, 9, 3, 1, 1),
            (4, 6, 8, 8, 3, 1, 2),
            (4, 6, 9, 7, 3, 0, 2),
            (2, 3, 1, 1, 3, 1, 1),
            (2, 3, 5, 6, 3, 0, 1),
            (3, 2, 6, 5, 5, 2, 1),
            (2, 2, 2, 3, 3, 2, 3),
        ];
        for (c_in, c_out, h, w, k, pad, stride) in cases {
            let x = Tensor::randn(0f32, 1.0, (2, c_in, h, w), &dev).expect("x");
            let wt = Tensor::randn(0f32, 1.0, (c_out, c_in, k, k), &dev).expect("w");
            let theirs = x.conv2d(&wt, pad, stride, 1, 1).expect("candle");
            // Whole, and in bands of one output row; through candle's GEMM and OpenBLAS's.
            let gemms = [false, crate::blas::available()];
            for (budget, openblas) in [IM2COL_BUDGET, 1]
                .into_iter()
                .flat_map(|b| gemms.map(|g| (b, g)))
            {
                let ours =
                    conv2d_weight_first_in(&x, &wt, pad, stride, budget, openblas).expect("ours");
                assert_eq!(
                    ours.dims(),
                    theirs.dims(),
                    "{c_in} {c_out} {h} {w} {k} {pad} {stride}"
                );
                let diff = (&ours - &theirs)
                    .expect("d")
                    .abs()
                    .expect("a")
                    .flatten_all()
                    .expect("f")
                    .max(0)
                    .expect("m")
                    .to_scalar::<f32>()
                    .expect("s");
                assert!(
                    diff < 1e-4,
                    "case {c_in} {c_out} {h} {w} {k} {pad} {stride} budget {budget}: {diff}"
                );
            }
        }
    }

    #[test]
    fn chunked_attention_equals_the_full_matrix() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).expect("q");
        let k = Tensor::randn(0f32, 1.0, (2, 29, 8), &dev).expect("k");
        let v = Tensor::randn(0f32, 1.0, (2, 29, 8), &dev).expect("v");
        let full = {
            let s = (q.matmul(&k.t().expect("t")).expect("mm") / (8f64).sqrt()).expect("s");
            candle_nn::ops::softmax_last_dim(&s)
                .expect("sm")
                .matmul(&v)
                .expect("mm")
        };
        // A budget of 5 queries' scores: 8 slices, the last one short.
        let chunked = attention_within(&q, &k, &v, None, 5 * 2 * 29 * 4).expect("attn");
        let diff = (full - chunked)
            .expect("diff")
            .abs()
            .expect("abs")
            .max_all()
            .expect("max")
            .to_scalar::<f32>()
            .expect("scalar");
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn sliced_attention_gives_the_gradients_of_the_full_matrix() {
        let dev = Device::Cpu;
        let var = |shape: (usize, usize, usize), seed: f64| {
            let t = Tensor::randn(0f32, 1.0, shape, &dev).expect("t");
            candle_core::Var::from_tensor(&(t * seed).expect("s")).expect("var")
        };
        let (q, k, v) = (
            var((2, 37, 8), 1.0),
            var((2, 29, 8), 0.7),
            var((2, 29, 8), 1.3),
        );
        let w = Tensor::randn(0f32, 1.0, (2, 37, 8), &dev).expect("w");
        // A budget of 5 queries' scores: 8 slices, the last one short.
        let ours = attention_within(
            q.as_tensor(),
            k.as_tensor(),
            v.as_tensor(),
            None,
            5 * 2 * 29 * 4,
        )
        .expect("attn");
        let full = {
            let s = (q
                .as_tensor()
                .matmul(&k.as_tensor().t().expect("t"))
                .expect("mm")
                / (8f64).sqrt())
            .expect("s");
            candle_nn::ops::softmax(&s, D::Minus1)
                .expect("sm")
                .matmul(v.as_tensor())
                .expect("mm")
        };
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .expect("d")
                .abs()
                .expect("a")
                .max_all()
                .expect("m")
                .to_scalar::<f32>()
                .expect("s")
        };
        assert!(diff(&ours, &full) < 1e-5);
        let g_ours = (ours * &w)
            .expect("m")
            .sum_all()
            .expect("s")
            .backward()
            .expect("b");
        let g_full = (full * &w)
            .expect("m")
            .sum_all()
            .expect("s")
            .backward()
            .expect("b");
        for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
            let (a, b) = (
                g_ours.get(t.as_tensor()).expect("ours"),
                g_full.get(t.as_tensor()).expect("full"),
            );
            assert!(diff(a, b) < 1e-5, "d{name}: {}", diff(a, b));
        }
    }

    #[test]
    fn the_training_upsample_equals_candles() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).expect("x");
        let v = candle_core::Var::from_tensor(&x).expect("var");
        let ours = upsample_nearest(v.as_tensor(), 8, 10).expect("ours");
        let theirs = x.upsample_nearest2d(8, 10).expect("theirs");
        let d = (ours.clone() - theirs)
            .expect("d")
            .abs()
            .expect("a")
            .max_all()
            .expect("m");
        assert_eq!(d.to_scalar::<f32>().expect("s"), 0.0);
        // Each input pixel feeds four outputs: its gradient is four times the output's.
        let g = ours.sum_all().expect("sum").backward().expect("backward");
        let gx = g.get(v.as_tensor()).expect("grad");
        assert!(
            gx.flatten_all()
                .expect("f")
                .to_vec1::<f32>()
                .expect("v")
                .iter()
                .all(|&e| e == 4.0)
        );
    }

    #[test]
    fn circular_padding_wraps_around() {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 4.0, &dev)
            .expect("x")
            .reshape((1, 1, 1, 4))
            .expect("r");
        let p = pad(&x, 3, 1, 1, true).expect("pad");
        assert_eq!(
            p.flatten_all().expect("f").to_vec1::<f32>().expect("v"),
            vec![3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
        );
    }
}
