//! The CPU kernel of every kernel: the CPU side of every benchmark, the way to run without a GPU
//! driver, and (generic over [`Float`], so gradient checks run in f64) the test oracle. Each
//! takes its kernel's `Params` and the same buffers in the same order (the read-only ones as an
//! `Inputs` struct where there are many). They are fast where the time goes: GEMMs through
//! our own f32 microkernels (`sgemm`, `matrixmultiply` for f64 and where they do not run) split
//! over one rayon pool (`parallel_gemm`), attention blocked as
//! FlashAttention (its row-by-row oracle kept as `reference`), and every row, plane, image, cell
//! and elementwise loop on the pool above a measured size (`worth_parallel`), each sum in the
//! same order whatever the thread count.

pub(crate) mod activations;
pub(crate) mod attention_backward_kv;
pub(crate) mod attention_forward;
pub(crate) mod axpy;
pub(crate) mod batch_norm_backward;
pub(crate) mod batch_norm_forward;
pub(crate) mod binary;
pub(crate) mod clip_scale;
pub(crate) mod conv2d_backward_data;
pub(crate) mod conv2d_backward_weight;
pub(crate) mod conv2d_forward;
pub(crate) mod convert;
pub(crate) mod cross_entropy_backward;
pub(crate) mod cross_entropy_forward;
pub(crate) mod dropout;
pub(crate) mod embedding_backward;
pub(crate) mod embedding_forward;
pub(crate) mod layer_norm_backward;
pub(crate) mod layer_norm_forward;
pub(crate) mod matmul;
pub(crate) mod optimizer_step;
pub(crate) mod pool2d_backward;
pub(crate) mod pool2d_forward;
pub(crate) mod recurrent_step_backward;
pub(crate) mod recurrent_step_forward;
pub(crate) mod reduce;
pub(crate) mod sample_categorical;
pub(crate) mod sgemm;
pub(crate) mod softmax_backward;
pub(crate) mod softmax_forward;
pub(crate) mod unary;
pub(crate) mod unary_backward;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The element types the CPU twins compute in: f32 (what tensors hold) and f64 (gradient checks).
pub trait Float:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn signum(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    /// self·a + b with one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// acc[j] += av·row[j], rounded as the GEMM's microkernel rounds its sums (f32 where one
    /// runs: a fused multiply-add per term), so that the GEMV path gives a row vector the bits
    /// that row gets inside a many-row product, however a launch splits its rows over tasks.
    fn accumulate_row(acc: &mut [Self], av: Self, row: &[Self]);
    /// The depth of the blocks whose partial sums [`Float::gemm`] adds into C one after the
    /// other (f32 with a microkernel: its KC), for the GEMV path to sum in the same blocks;
    /// `None` where the GEMV path cannot round as the GEMM does (f32 through matrixmultiply),
    /// so row vectors take the GEMM too. f64, the oracles' type, keeps the GEMV path and makes
    /// no promise about a row's last bit.
    fn gemm_depth_block(k: usize) -> Option<usize>;

    /// σ over a slice, in place, as [`activations::sigmoid`] computes it one value at a time:
    /// f32's is branch-free (its exp is [`exp_f32`]) and compiled for the processor's widest
    /// vectors; f64's is the scalar loop with libm's exp.
    fn sigmoid_slice(v: &mut [Self]);
    /// tanh over a slice, in place: as `sigmoid_slice`.
    fn tanh_slice(v: &mut [Self]);
    /// eˣ over a slice, in place: f32's is [`exp_f32`] a vector at a time (attention's
    /// probabilities: glibc's `expf`, one call per score, was a quarter of a training step),
    /// f64's libm's exp.
    fn exp_slice(v: &mut [Self]);

    /// Runs `f` on this thread's scratch buffer of `n` elements (contents unspecified): twins
    /// that run every timestep take their temporaries here instead of allocating each step. A
    /// nested call on one thread (a pool thread stealing another twin's task while it waits)
    /// gets a fresh buffer.
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    /// C = α·A·B + β·C for one matrix of `[m, k, n]`, through [`sgemm`] for f32 and
    /// `matrixmultiply` for f64 (both pack, both SIMD),
    /// split over the thread pool when large; each operand is
    /// (pointer, row stride, column stride). β = 0 does not read C.
    ///
    /// # Safety
    /// Every element addressed by (m, k, n) and the strides must lie inside the allocations.
    unsafe fn gemm(
        mkn: [usize; 3],
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );

    /// B [k, n] (contiguous rows `rsb` apart) packed once for many products of
    /// [`Float::gemm_packed`] (f32 where a microkernel runs: a recurrent layer's weights, once
    /// per sequence instead of once per timestep); `None` where products read B as given.
    fn pack_b(b: &[Self], kn: [usize; 2], rsb: usize) -> Option<sgemm::PackedB>;

    /// [`Float::gemm`] on this thread, B from `packed` when given and A has more than one row
    /// (a row vector takes the GEMV path); `b` must be the operand `packed` was made from.
    ///
    /// # Safety
    /// As [`Float::gemm`].
    unsafe fn gemm_packed(
        mkn: [usize; 3],
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        packed: Option<&sgemm::PackedB>,
        beta: Self,
        c: (*mut Self, isize, isize),
    );
}

/// tanh in f32 with no call and no branch, so loops over it vectorise: a 13/6 rational approximation in x (the form Eigen
/// and XNNPACK use), x itself below 4e-4, ±1 past ±9. Within a few ulp everywhere.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let xc = x.clamp(-7.905_311, 7.905_311);
    let x2 = xc * xc;
    let p = (-2.760_768_5e-16_f32) * x2 + 2.000_188e-13;
    let p = p * x2 + -8.604_672e-11;
    let p = p * x2 + 5.122_297e-8;
    let p = p * x2 + 1.485_722_4e-5;
    let p = p * x2 + 6.372_619_3e-4;
    let p = (p * x2 + 4.893_524_6e-3) * xc;
    let q = 1.198_258_4e-6_f32 * x2 + 1.185_347e-4;
    let q = q * x2 + 2.268_434_6e-3;
    let q = q * x2 + 4.893_525e-3;
    if x.abs() < 4e-4 {
        x
    } else if x.abs() > 9.0 {
        // Where tanh rounds to ±1 in f32 (the rational form stops a few ulp short).
        1f32.copysign(x)
    } else {
        p / q
    }
}

/// exp in f32 with no call and no branch, so loops over it vectorise: x = n·ln 2 + r with n
/// rounded to nearest by the 1.5·2²³ trick (no SSE4.1 rounding needed, and n is left in the low
/// mantissa bits: Rust's saturating float-to-int conversion would not vectorise), e^r by Cephes'
/// degree-7 polynomial on |r| ≤ ln 2 / 2 (plain multiply-adds: `mul_add` is a call where the
/// target has no FMA), and 2ⁿ as two halves so that results down to the subnormals are right.
/// Within a few ulp; 0 below −104, ∞ above 88.8, NaN for NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-104.0, 88.8);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4;
    let r = r + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let (n1, n2) = (n >> 1, n - (n >> 1));
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    y * scale(n1) * scale(n2)
}

/// σ in f32, branch-free: the stable form of [`activations::sigmoid`] with [`exp_f32`].
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_f32(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// `f` over a slice of f32 in place, the loop compiled three times (AVX-512, AVX2 + FMA, the
/// baseline) and the widest the processor runs chosen at run time.
macro_rules! f32_slice_fn {
    ($name:ident, $f:path) => {
        fn $name(v: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide(v: &mut [f32]) {
                    v.iter_mut().for_each(|x| *x = $f(*x));
                }
                #[target_feature(enable = "avx2,fma")]
                fn mid(v: &mut [f32]) {
                    v.iter_mut().for_each(|x| *x = $f(*x));
                }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the processor has AVX-512F.
                    return unsafe { wide(v) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the processor has AVX2 and FMA.
                    return unsafe { mid(v) };
                }
            }
            v.iter_mut().for_each(|x| *x = $f(*x));
        }
    };
}
f32_slice_fn!(sigmoid_f32_slice, sigmoid_f32);
f32_slice_fn!(tanh_f32_slice, tanh_f32);
f32_slice_fn!(exp_f32_slice, exp_f32);

fn sigmoid_slice_scalar<F: Float>(v: &mut [F]) {
    v.iter_mut().for_each(|x| *x = activations::sigmoid(*x));
}

fn tanh_slice_scalar<F: Float>(v: &mut [F]) {
    v.iter_mut().for_each(|x| *x = x.tanh());
}

fn exp_slice_scalar<F: Float>(v: &mut [F]) {
    v.iter_mut().for_each(|x| *x = x.exp());
}

macro_rules! float_impl {
    ($t:ty, $gemm:path, $shared_b:path, $tanh:path, $sigmoid_slice:path, $tanh_slice:path, $exp_slice:path, $pack_b:path, $gemm_packed:path, $accumulate_row:path, $depth_block:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            fn accumulate_row(acc: &mut [Self], av: Self, row: &[Self]) {
                $accumulate_row(acc, av, row)
            }
            fn gemm_depth_block(k: usize) -> Option<usize> {
                $depth_block(k)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                $tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn signum(self) -> Self {
                if self == 0.0 {
                    0.0
                } else {
                    <$t>::signum(self)
                }
            }
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            fn sigmoid_slice(v: &mut [Self]) {
                $sigmoid_slice(v)
            }
            fn tanh_slice(v: &mut [Self]) {
                $tanh_slice(v)
            }
            fn exp_slice(v: &mut [Self]) {
                $exp_slice(v)
            }
            fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static SCRATCH: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                SCRATCH.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut v) => {
                        if v.len() < n {
                            v.resize(n, 0.0);
                        }
                        let r = f(&mut v[..n]);
                        if v.len() > SCRATCH_KEEP {
                            // A rare large temporary: do not hold it for the thread's life.
                            *v = Vec::new();
                        }
                        r
                    }
                    Err(_) => f(&mut vec![0.0; n]),
                })
            }
            unsafe fn gemm(
                mkn: [usize; 3],
                alpha: Self,
                a: (*const Self, isize, isize),
                b: (*const Self, isize, isize),
                beta: Self,
                c: (*mut Self, isize, isize),
            ) {
                let one = |[m, k, n]: [usize; 3],
                           (a, rsa, csa): (*const Self, isize, isize),
                           (b, rsb, csb): (*const Self, isize, isize),
                           (c, rsc, csc): (*mut Self, isize, isize)| {
                    // SAFETY: the caller guarantees every addressed element is in bounds, and
                    // `parallel_gemm` hands each call a disjoint block of C.
                    unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
                };
                // SAFETY: forwarded from the caller.
                if unsafe { $shared_b(mkn, alpha, a, b, beta, c) } {
                    return;
                }
                // SAFETY: forwarded from the caller.
                unsafe { parallel_gemm(mkn, alpha, beta, a, b, c, one) }
            }
            fn pack_b(b: &[Self], kn: [usize; 2], rsb: usize) -> Option<sgemm::PackedB> {
                $pack_b(b, kn, rsb)
            }
            unsafe fn gemm_packed(
                mkn: [usize; 3],
                alpha: Self,
                a: (*const Self, isize, isize),
                b: (*const Self, isize, isize),
                packed: Option<&sgemm::PackedB>,
                beta: Self,
                c: (*mut Self, isize, isize),
            ) {
                // SAFETY: forwarded from the caller.
                unsafe { $gemm_packed(mkn, alpha, a, b, packed, beta, c) }
            }
        }
    };
}

/// The fewest rows of A a task of [`shared_b_f32`] takes: less, and packing its block of A
/// and loading the strips of B would cost more than its share of the product.
const SHARED_B_ROWS: usize = 64;

/// A tall product (M ≥ N, four tasks per thread of at least [`SHARED_B_ROWS`] rows, the pool
/// free to fork) with B packed once, on the pool, and shared by the tasks, blocks of A's rows
/// that the pool's threads take as they come. `parallel_gemm` would cut M into one block per thread,
/// each packing all of B again, and a thread the hypervisor slows holds up the whole product.
/// Returns whether it ran the product.
///
/// # Safety
/// As [`Float::gemm`].
unsafe fn shared_b_f32(
    [m, k, n]: [usize; 3],
    alpha: f32,
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    beta: f32,
    c: (*mut f32, isize, isize),
) -> bool {
    use rayon::prelude::*;
    let Some(isa) = sgemm::Isa::detect() else {
        return false;
    };
    let tasks = 4 * rayon::current_num_threads();
    let rows = m.div_ceil(tasks).next_multiple_of(16);
    if m < n || rows < SHARED_B_ROWS || m * n * k < 8 * PARALLEL_GEMM_MIN || !may_fork() {
        return false;
    }
    // SAFETY: B's k × n elements are inside B (the caller's contract).
    let packed = unsafe { sgemm::PackedB::from_raw(isa, [k, n], b) };
    let (a, c) = (Shared(a), Shared(c));
    (0..m.div_ceil(rows)).into_par_iter().for_each(|i| {
        let (r0, rows) = (i * rows, rows.min(m - i * rows));
        let ((ap, rsa, csa), (cp, rsc, csc)) = (a.get(), c.get());
        let r = r0 as isize;
        // SAFETY: rows r0..r0 + rows of A and C lie inside what the caller vouched for; the
        // tasks' blocks of C are disjoint.
        unsafe {
            sgemm::sgemm_packed(
                rows,
                alpha,
                (ap.offset(r * rsa), rsa, csa),
                &packed,
                beta,
                (cp.offset(r * rsc), rsc, csc),
            )
        };
    });
    true
}

/// # Safety
/// Never unsafe: the f64 path never shares a packed B.
unsafe fn never_shared<F>(
    _: [usize; 3],
    _: F,
    _: (*const F, isize, isize),
    _: (*const F, isize, isize),
    _: F,
    _: (*mut F, isize, isize),
) -> bool {
    false
}

fn pack_b_f32(b: &[f32], kn: [usize; 2], rsb: usize) -> Option<sgemm::PackedB> {
    sgemm::Isa::detect().map(|isa| sgemm::PackedB::new(isa, b, kn, rsb))
}

/// # Safety
/// As [`Float::gemm_packed`].
unsafe fn gemm_packed_f32(
    [m, k, n]: [usize; 3],
    alpha: f32,
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    packed: Option<&sgemm::PackedB>,
    beta: f32,
    c: (*mut f32, isize, isize),
) {
    match packed {
        // SAFETY: forwarded from the caller.
        Some(p) if m > 1 => unsafe { sgemm::sgemm_packed(m, alpha, a, p, beta, c) },
        // SAFETY: forwarded from the caller.
        _ => unsafe { <f32 as Float>::gemm([m, k, n], alpha, a, b, beta, c) },
    }
}

fn pack_b_never<F>(_: &[F], _: [usize; 2], _: usize) -> Option<sgemm::PackedB> {
    None
}

/// # Safety
/// As [`Float::gemm_packed`].
unsafe fn gemm_in_place<F: Float>(
    mkn: [usize; 3],
    alpha: F,
    a: (*const F, isize, isize),
    b: (*const F, isize, isize),
    _: Option<&sgemm::PackedB>,
    beta: F,
    c: (*mut F, isize, isize),
) {
    // SAFETY: forwarded from the caller.
    unsafe { F::gemm(mkn, alpha, a, b, beta, c) }
}

// f32, what tensors hold, takes the vectorisable tanh (libm's tanhf is ten times slower; its
// expf, with FMA chosen at run time, beat a polynomial exp inside the attention loops); f64, the
// gradient checks' type, keeps libm's.
float_impl!(
    f32,
    sgemm::sgemm,
    shared_b_f32,
    tanh_f32,
    sigmoid_f32_slice,
    tanh_f32_slice,
    exp_f32_slice,
    pack_b_f32,
    gemm_packed_f32,
    sgemm::accumulate_row,
    sgemm::depth_block
);
float_impl!(
    f64,
    matrixmultiply::dgemm,
    never_shared,
    f64::tanh,
    sigmoid_slice_scalar,
    tanh_slice_scalar,
    exp_slice_scalar,
    pack_b_never,
    gemm_in_place,
    accumulate_row_f64,
    whole_depth
);

/// f64's GEMV sums: a product and a sum per term (matrixmultiply's own rounding is not matched).
fn accumulate_row_f64(acc: &mut [f64], av: f64, row: &[f64]) {
    for (s, &v) in acc.iter_mut().zip(row) {
        *s += av * v;
    }
}

fn whole_depth(k: usize) -> Option<usize> {
    Some(k)
}

/// The name [`crate::Device::cpu_gemm`] reports.
pub(crate) fn gemm_name() -> &'static str {
    match sgemm::Isa::detect() {
        Some(sgemm::Isa::Avx512) => "avx512",
        Some(sgemm::Isa::Avx2) => "avx2+fma",
        None => "matrixmultiply",
    }
}

/// A pointer that crosses to the pool's threads; each task touches a disjoint part of what it
/// points to (the user says which, in a SAFETY comment).
#[derive(Clone, Copy)]
pub(crate) struct Shared<P>(pub(crate) P);
// SAFETY: users give every task its own part of the pointee (parallel_gemm: a block of C; the
// convolution's weight gradient: a partial sum) and only read what others write.
unsafe impl<P> Send for Shared<P> {}
// SAFETY: as above.
unsafe impl<P> Sync for Shared<P> {}

impl<P: Copy> Shared<P> {
    /// The pointer (a method, so closures capture the Send wrapper, not the raw field).
    pub(crate) fn get(&self) -> P {
        self.0
    }
}

/// The most elements a thread's scratch buffer keeps between calls (4 Mi, 16 MiB in f32).
const SCRATCH_KEEP: usize = 1 << 22;

/// Products below this many multiply-adds (about 25 µs on one core) run on the calling thread,
/// where a hand-off to the pool would cost about as much as it saves. Chosen, not tuned: the
/// bench's small products (B = 32 MLP, 64³ attention tiles) stay below it.
const PARALLEL_GEMM_MIN: usize = 1 << 19;

/// C = A·B split into one block of C per thread of the pool (along the longer of M and N, in
/// multiples of 32), each block a single-threaded GEMM call, so GEMMs share the one
/// thread pool with every other parallel twin (a product inside a pool task, such as an attention
/// tile, is split only when large, and then by work stealing, never by more threads).
///
/// # Safety
/// As [`Float::gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn parallel_gemm<F: Float>(
    [m, k, n]: [usize; 3],
    alpha: F,
    beta: F,
    a: (*const F, isize, isize),
    b: (*const F, isize, isize),
    c: (*mut F, isize, isize),
    one: impl Fn([usize; 3], (*const F, isize, isize), (*const F, isize, isize), (*mut F, isize, isize))
        + Sync,
) {
    if m == 1 && b.2 == 1 && c.2 == 1 && F::gemm_depth_block(k).is_some() {
        // A row vector times a matrix whose rows are contiguous (a skinny RNN step at batch 1, a
        // matmul with M = 1): memory-bound, and a GEMM's register tile would be mostly padding. Walk B
        // once, row by row, each pool task owning a run of C's columns.
        // SAFETY: forwarded from the caller.
        return unsafe { gemv_rows([k, n], alpha, beta, a, b, c) };
    }
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PARALLEL_GEMM_MIN || !may_fork() {
        return one([m, k, n], a, b, c);
    }
    let along_m = m >= n;
    let long = if along_m { m } else { n };
    let block = long.div_ceil(threads).next_multiple_of(32);
    if block >= long {
        return one([m, k, n], a, b, c);
    }
    let (a, b, c) = (Shared(a), Shared(b), Shared(c));
    rayon::scope(|scope| {
        for start in (0..long).step_by(block) {
            let len = block.min(long - start);
            let one = &one;
            scope.spawn(move |_| {
                let (Shared((ap, rsa, csa)), Shared((bp, rsb, csb)), Shared((cp, rsc, csc))) =
                    (a, b, c);
                let s = start as isize;
                // SAFETY: rows (or columns) start..start+len of A (or B) and C lie inside what
                // the caller vouched for; the blocks of C are disjoint.
                unsafe {
                    if along_m {
                        one(
                            [len, k, n],
                            (ap.offset(s * rsa), rsa, csa),
                            (bp, rsb, csb),
                            (cp.offset(s * rsc), rsc, csc),
                        )
                    } else {
                        one(
                            [m, k, len],
                            (ap, rsa, csa),
                            (bp.offset(s * csb), rsb, csb),
                            (cp.offset(s * csc), rsc, csc),
                        )
                    }
                }
            });
        }
    });
}

/// Batch rows per pool task for a recurrent launch (one timestep, or a whole sequence) whose
/// products take `macs` multiply-adds in all: the whole batch (one task, on the caller) when the
/// launch is below the GEMM's own split threshold or may not fork, else the batch shared evenly
/// over the pool's threads. Each task multiplies its rows and runs their cells: a launch forks
/// once.
pub(crate) fn batch_rows_per_task(batch: usize, macs: usize) -> usize {
    if batch > 1 && macs >= PARALLEL_GEMM_MIN && may_fork() {
        batch.div_ceil(rayon::current_num_threads())
    } else {
        batch
    }
}

/// Runs `f(b0, n)` for each run of `chunk` batch rows (`b0..b0 + n`, the last may be shorter):
/// on the calling thread when one run covers the batch, else one pool task per run.
pub(crate) fn each_row_run(batch: usize, chunk: usize, f: impl Fn(usize, usize) + Sync) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if chunk >= batch {
        return f(0, batch);
    }
    (0..batch.div_ceil(chunk))
        .into_par_iter()
        .for_each(|i| f(i * chunk, chunk.min(batch - i * chunk)));
}

/// A buffer that the pool tasks of one launch write at once, each only at the batch rows it
/// owns (a recurrent launch's state, gates and outputs: a task's rows of one timestep are
/// interleaved with the other tasks' in every plane, so no split into `&mut` chunks fits). A
/// task makes slices of its own rows only, bounds-checked, and no two tasks' slices overlap.
#[derive(Clone, Copy)]
pub(crate) struct RowsMut<'a, F> {
    ptr: *mut F,
    len: usize,
    _buffer: std::marker::PhantomData<&'a mut [F]>,
}
// SAFETY: tasks make disjoint slices only (see `slice`'s contract).
unsafe impl<F: Send> Send for RowsMut<'_, F> {}
// SAFETY: as above.
unsafe impl<F: Send> Sync for RowsMut<'_, F> {}

impl<'a, F> RowsMut<'a, F> {
    /// The buffer, borrowed mutably for as long as any slice of it lives.
    pub(crate) fn new(buffer: &'a mut [F]) -> Self {
        RowsMut {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            _buffer: std::marker::PhantomData,
        }
    }

    /// `len` elements from `start` (panics past the end).
    ///
    /// # Safety
    /// No other live slice of the buffer (in this task or another) overlaps
    /// `start..start + len` while this one is used.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &'a mut [F] {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "recurrent rows {start}..+{len} outside a buffer of {}",
            self.len
        );
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// c[0, :] = α·a[0, :]·B + β·c[0, :] for B with contiguous rows (`b.2 == 1`) and C contiguous:
/// the sums Σ_k a_k·B[k, :] run over B once, row by row, a block of C's columns per pool task.
/// Rounded as the GEMM rounds one row of a many-row product (its depth blocks, its fused
/// multiply-adds, then α·sum + β·C with one rounding, later blocks added to C), so a row's
/// bits do not depend on how many rows a task multiplies at once.
///
/// # Safety
/// As [`Float::gemm`].
unsafe fn gemv_rows<F: Float>(
    [k, n]: [usize; 2],
    alpha: F,
    beta: F,
    a: (*const F, isize, isize),
    b: (*const F, isize, isize),
    c: (*mut F, isize, isize),
) {
    use rayon::prelude::*;
    let (a, b, c) = (Shared(a), Shared(b), Shared(c));
    // Columns per task: the running sums stay on the stack (no scratch to borrow: the caller
    // may hold this thread's).
    const BLOCK: usize = 256;
    let depth = F::gemm_depth_block(k).unwrap_or(k).max(1);
    let block = |blk: usize| {
        let (Shared((ap, _, csa)), Shared((bp, rsb, _)), Shared((cp, _, _))) = (a, b, c);
        let j0 = blk * BLOCK;
        let cols = BLOCK.min(n - j0);
        let mut acc = [F::ZERO; BLOCK];
        let acc = &mut acc[..cols];
        // SAFETY: C's columns j0..j0 + cols are this task's alone.
        let out = unsafe { std::slice::from_raw_parts_mut(cp.add(j0), cols) };
        if k == 0 {
            for o in out.iter_mut() {
                *o = if beta == F::ZERO { F::ZERO } else { beta * *o };
            }
            return;
        }
        for p0 in (0..k).step_by(depth) {
            acc.fill(F::ZERO);
            for kk in p0 as isize..(p0 + depth).min(k) as isize {
                // SAFETY: a[0, kk] and B[kk, j0..j0 + cols] lie inside what the caller vouched
                // for.
                let (av, row) = unsafe {
                    (
                        *ap.offset(kk * csa),
                        std::slice::from_raw_parts(bp.offset(kk * rsb + j0 as isize), cols),
                    )
                };
                F::accumulate_row(acc, av, row);
            }
            for (o, &s) in out.iter_mut().zip(acc.iter()) {
                let r = alpha * s;
                *o = match (p0, beta == F::ZERO) {
                    (0, true) => r,
                    (0, false) => beta.mul_add(*o, r),
                    _ => *o + r,
                };
            }
        }
    };
    if worth_parallel(k * n) {
        (0..n.div_ceil(BLOCK)).into_par_iter().for_each(block);
    } else {
        (0..n.div_ceil(BLOCK)).for_each(block);
    }
}

/// Elements per pool task of the elementwise twins (unary, optimizer step): arrays shorter than
/// two of these run on the calling thread, where a pool round trip (a few µs) would cost more
/// than the loop.
pub(crate) const GRAIN: usize = 1 << 14;

/// Whether `elements` of work go to the pool. A parallel loop started outside the pool hands its
/// work to a pool thread and waits for it: tens of µs, more than a small loop takes (the B = 32
/// MLP step took 0.19 ms on one thread and 0.34 ms when its small row loops went to the pool).
pub(crate) fn worth_parallel(elements: usize) -> bool {
    elements >= 2 * GRAIN && may_fork()
}

/// Whether this thread may start parallel loops: only from outside the pool. On a pool thread
/// (a task of ours, or a caller that is itself a rayon worker) the twins run serially: a waiting
/// pool thread steals other tasks, and a stolen task of the caller's that wanted a host lock the
/// waiting op holds would deadlock. A pool of one thread is not forked to either: the hand-off
/// and the wake-up would be all it bought.
pub(crate) fn may_fork() -> bool {
    rayon::current_thread_index().is_none() && rayon::current_num_threads() > 1
}

/// Runs `f(i, chunk)` for each `len`-element chunk of `y` (the last may be shorter), on the
/// pool when [`worth_parallel`] says so, else on the calling thread.
pub(crate) fn for_each_chunk<T: Send>(
    y: &mut [T],
    len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let len = len.max(1);
    each_chunk(
        y,
        len,
        worth_parallel(y.len()).then(|| rows_per_task(len)),
        f,
    );
}

/// Runs `f(i, chunk)` for each `len`-element chunk of `y`: on the pool, at least `min` chunks
/// per task, when `min` is given; else on the calling thread.
pub(crate) fn each_chunk<T: Send>(
    y: &mut [T],
    len: usize,
    min: Option<usize>,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    let len = len.max(1);
    match min {
        Some(min) => y
            .par_chunks_mut(len)
            .with_min_len(min)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
        None => y.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c)),
    }
}

/// Runs `f(start, chunk)` over consecutive chunks of `y` (`start`: the chunk's first index), on
/// the pool when `y` holds at least two [`GRAIN`]s.
pub(crate) fn for_chunks<T: Send>(y: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    if !worth_parallel(y.len()) {
        f(0, y);
    } else {
        y.par_chunks_mut(GRAIN)
            .enumerate()
            .for_each(|(i, c)| f(i * GRAIN, c));
    }
}

/// The element offsets of a strided tensor from its `start`-th element on (row-major over
/// `shape`): [`strided_offset`] once, then an odometer step per element instead of a division
/// and a remainder per dimension.
pub(crate) struct StridedOffsets<'a> {
    idx: [usize; 8],
    off: usize,
    shape: &'a [u32],
    strides: &'a [u32],
}

impl<'a> StridedOffsets<'a> {
    pub(crate) fn new(start: usize, shape: &'a [u32], strides: &'a [u32]) -> Self {
        let mut idx = [0; 8];
        let mut rem = start;
        for d in (0..shape.len()).rev() {
            let n = (shape[d] as usize).max(1);
            idx[d] = rem % n;
            rem /= n;
        }
        StridedOffsets {
            idx,
            off: strided_offset(start, shape, strides),
            shape,
            strides,
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let here = self.off;
        for d in (0..self.shape.len()).rev() {
            self.idx[d] += 1;
            self.off += self.strides[d] as usize;
            if self.idx[d] < self.shape[d] as usize {
                return Some(here);
            }
            self.off -= self.strides[d] as usize * self.shape[d] as usize;
            self.idx[d] = 0;
        }
        // Past the last element: the caller's zip has stopped by then.
        Some(here)
    }
}

/// Rows per pool task so that each holds at least a [`GRAIN`] of elements.
pub(crate) fn rows_per_task(cols: usize) -> usize {
    GRAIN.div_ceil(cols.max(1))
}

/// Element offset of the `i`-th element (row-major over `shape`) of a strided tensor: the twin of
/// `strided_offset` in shaders/common/strided.wgsl.
pub(crate) fn strided_offset(i: usize, shape: &[u32], strides: &[u32]) -> usize {
    let mut rem = i;
    let mut off = 0;
    for d in (0..shape.len()).rev() {
        let n = shape[d] as usize;
        off += (rem % n) * strides[d] as usize;
        rem /= n;
    }
    off
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, may_fork, shared_b_f32, sigmoid_f32, tanh_f32, Float};

    /// A row vector's product (the GEMV path) has the bits of the same row inside a many-row
    /// product (the microkernel's tiles, full and edge), for depths of one block and of
    /// several, β = 0, 1 and neither: so a launch's result does not depend on how its rows
    /// are split over the pool (a 16-thread machine split a recurrent batch into one-row tasks
    /// and its outputs moved in the last bit). Where matrixmultiply runs (no microkernel for
    /// the processor) row vectors take the GEMM as well, but its own blocking makes no such
    /// promise.
    #[test]
    fn a_row_alone_has_the_bits_it_has_among_many() {
        if super::sgemm::Isa::detect().is_none() {
            // matrixmultiply's blocks depend on the product's shape: no promise there.
            return;
        }
        let value =
            |i: usize, s: usize| ((i * 2_654_435_761 + s * 40_503) % 1000) as f32 / 1000.0 - 0.5;
        for (m, k, n) in [(13, 67, 268), (9, 300, 17), (20, 600, 40), (3, 1, 5)] {
            let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
            for (alpha, beta) in [(1.0f32, 0.0f32), (0.7, 1.0), (-0.5, 1.5)] {
                let mut all = c0.clone();
                // SAFETY: the strides address exactly the vectors above.
                unsafe {
                    <f32 as Float>::gemm(
                        [m, k, n],
                        alpha,
                        (a.as_ptr(), k as isize, 1),
                        (b.as_ptr(), n as isize, 1),
                        beta,
                        (all.as_mut_ptr(), n as isize, 1),
                    )
                };
                for r in 0..m {
                    let mut one = c0[r * n..][..n].to_vec();
                    // SAFETY: row r of A, all of B, one row of C.
                    unsafe {
                        <f32 as Float>::gemm(
                            [1, k, n],
                            alpha,
                            (a[r * k..].as_ptr(), k as isize, 1),
                            (b.as_ptr(), n as isize, 1),
                            beta,
                            (one.as_mut_ptr(), n as isize, 1),
                        )
                    };
                    let row = &all[r * n..][..n];
                    let differ = one
                        .iter()
                        .zip(row)
                        .filter(|(x, y)| x.to_bits() != y.to_bits());
                    assert_eq!(
                        differ.count(),
                        0,
                        "[{m}, {k}, {n}] α {alpha} β {beta}: row {r} alone differs from its \
                         bits among {m} rows"
                    );
                }
            }
        }
    }

    /// A tall product with B packed once and shared over the pool's tasks (the last task's
    /// rows short of a full block), B row-major and transposed, α and β: the f64 sums.
    #[test]
    fn a_tall_product_over_a_shared_packed_b_is_the_product() {
        // Tall enough that every thread count gives four tasks of at least SHARED_B_ROWS rows,
        // the last one short.
        let m = 4 * rayon::current_num_threads() * super::SHARED_B_ROWS + 7;
        let (k, n) = (300, 131);
        let value =
            |i: usize, s: usize| ((i * 2_654_435_761 + s * 40_503) % 1000) as f32 / 1000.0 - 0.5;
        let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
        let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
        let c0: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
        for (transposed, alpha, beta) in [(false, 1.0f32, 0.0f32), (true, -0.5, 1.5)] {
            // B[p, j] at p·rsb + j·csb: row-major k × n, or the transpose of an n × k matrix.
            let (rsb, csb) = if transposed {
                (1, k as isize)
            } else {
                (n as isize, 1)
            };
            let mut c = c0.clone();
            // SAFETY: the strides address exactly the vectors above.
            let ran = unsafe {
                shared_b_f32(
                    [m, k, n],
                    alpha,
                    (a.as_ptr(), k as isize, 1),
                    (b.as_ptr(), rsb, csb),
                    beta,
                    (c.as_mut_ptr(), n as isize, 1),
                )
            };
            if !ran {
                // A processor without a microkernel, or a one-thread pool: nothing to check.
                assert!(!may_fork() || super::sgemm::Isa::detect().is_none());
                continue;
            }
            // The same bits as one single-threaded call: sharing B and splitting rows changes
            // no sum's order, so results do not depend on the thread count.
            let mut one = c0.clone();
            // SAFETY: as above.
            unsafe {
                super::sgemm::sgemm(
                    m,
                    k,
                    n,
                    alpha,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    rsb,
                    csb,
                    beta,
                    one.as_mut_ptr(),
                    n as isize,
                    1,
                )
            };
            assert!(
                one.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                "transposed {transposed}: the shared-B product differs from one call's bits"
            );
            for i in 0..m {
                for j in 0..n {
                    let sum: f64 = (0..k)
                        .map(|p| {
                            f64::from(a[i * k + p])
                                * f64::from(b[(p as isize * rsb + j as isize * csb) as usize])
                        })
                        .sum();
                    let want = f64::from(alpha) * sum + f64::from(beta) * f64::from(c0[i * n + j]);
                    let got = f64::from(c[i * n + j]);
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "transposed {transposed}: C[{i},{j}] = {got}, want {want}"
                    );
                }
            }
        }
    }

    /// Relative error in units of f32 epsilon against f64's libm, over a dense sweep.
    fn worst(f: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let steps = 200_000;
        (0..=steps)
            .map(|i| {
                let x = lo + (hi - lo) * i as f32 / steps as f32;
                let want = exact(f64::from(x));
                (f64::from(f(x)) - want).abs() / want.abs().max(f64::from(f32::MIN_POSITIVE))
            })
            .fold(0.0, f64::max)
            / f64::from(f32::EPSILON)
    }

    /// The odometer walks the same offsets as the division form, from any start, on a
    /// transposed and a broadcast (stride 0) view.
    #[test]
    fn strided_offsets_match_strided_offset() {
        for (shape, strides) in [
            (&[3u32, 5, 2][..], &[1u32, 6, 3][..]),
            (&[4, 1, 7], &[0, 9, 1]),
            (&[1], &[5]),
        ] {
            let n: u32 = shape.iter().product();
            for start in 0..n as usize {
                let got: Vec<usize> = super::StridedOffsets::new(start, shape, strides)
                    .take(n as usize - start)
                    .collect();
                let want: Vec<usize> = (start..n as usize)
                    .map(|i| super::strided_offset(i, shape, strides))
                    .collect();
                assert_eq!(
                    got, want,
                    "shape {shape:?} strides {strides:?} from {start}"
                );
            }
        }
    }

    /// The row-vector path (M = 1, B's rows contiguous) against the sums written out, in f64 and
    /// f32: lengths 1, primes and past a block, a strided A, α and β.
    #[test]
    fn row_vector_products_match_the_sums() {
        use super::Float;
        use crate::testing::randn64;
        for (k, n) in [(1usize, 1usize), (7, 255), (300, 257), (64, 1000), (1, 513)] {
            for beta in [0.0, 0.3] {
                let a = randn64(1, 3 * k); // read with column stride 3
                let b = randn64(2, k * n);
                let c0 = randn64(3, n);
                let want: Vec<f64> = (0..n)
                    .map(|j| {
                        0.5 * (0..k).map(|kk| a[3 * kk] * b[kk * n + j]).sum::<f64>() + beta * c0[j]
                    })
                    .collect();
                let mut c = c0.clone();
                // SAFETY: A is 1×k at column stride 3 inside 3k elements, B is k×n, C 1×n.
                unsafe {
                    f64::gemm(
                        [1, k, n],
                        0.5,
                        (a.as_ptr(), 0, 3),
                        (b.as_ptr(), n as isize, 1),
                        beta,
                        (c.as_mut_ptr(), n as isize, 1),
                    );
                }
                for (j, (g, w)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "k={k} n={n}: c[{j}] {g} vs {w}"
                    );
                }
                let (a32, b32): (Vec<f32>, Vec<f32>) = (
                    a.iter().map(|&v| v as f32).collect(),
                    b.iter().map(|&v| v as f32).collect(),
                );
                let mut c32: Vec<f32> = c0.iter().map(|&v| v as f32).collect();
                // SAFETY: as above.
                unsafe {
                    f32::gemm(
                        [1, k, n],
                        0.5,
                        (a32.as_ptr(), 0, 3),
                        (b32.as_ptr(), n as isize, 1),
                        beta as f32,
                        (c32.as_mut_ptr(), n as isize, 1),
                    );
                }
                for (j, (g, w)) in c32.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (1.0 + w.abs()) * (k as f64).sqrt();
                    assert!(
                        (f64::from(*g) - w).abs() <= tol,
                        "f32 k={k} n={n}: c[{j}] {g} vs {w}"
                    );
                }
            }
        }
    }

    /// An op called from a pool thread (a caller that is itself a rayon worker) runs its
    /// serial branches and gives what the parallel ones give from outside the pool.
    #[test]
    fn ops_called_on_a_pool_thread_run_serially_with_the_same_results() {
        use crate::testing::{assert_close, randn, Tol};
        use crate::{attention, AttentionOptions, ConvOptions, Device, Tensor};
        let run = || -> Vec<Vec<f32>> {
            let t = |seed, shape: &[usize]| {
                let n = shape.iter().product();
                Tensor::from_slice(&Device::Cpu, &randn(seed, n), shape).unwrap()
            };
            assert_eq!(super::may_fork(), rayon::current_thread_index().is_none());
            let (a, b) = (t(1, &[256, 300]), t(2, &[300, 256]));
            let (x, w, bias) = (t(3, &[4, 8, 16, 16]), t(4, &[16, 8, 3, 3]), t(5, &[16]));
            let conv = x
                .conv2d(&w, Some(&bias), &ConvOptions::default().padding(1))
                .unwrap();
            let (q, k, v) = (
                t(6, &[4, 130, 16]),
                t(7, &[4, 130, 16]),
                t(8, &[4, 130, 16]),
            );
            let opts = AttentionOptions {
                causal: true,
                ..AttentionOptions::default()
            };
            let o = attention(&q, &k, &v, opts).unwrap();
            [
                a.matmul(&b).unwrap(),
                conv,
                o,
                t(9, &[1 << 16]).tanh().unwrap(),
            ]
            .iter()
            .map(|y| y.read_blocking().unwrap())
            .collect()
        };
        let outside = run();
        let (inside, ()) = rayon::join(run, || ());
        for (i, (got, want)) in inside.iter().zip(&outside).enumerate() {
            assert_close(
                &format!("op {i}"),
                got,
                want,
                Tol {
                    abs: 1e-6,
                    rel: 1e-5,
                },
            );
        }
    }

    #[test]
    fn tanh_f32_is_within_a_few_ulp_and_saturates() {
        for (lo, hi) in [(-9.0, 9.0), (-0.01, 0.01)] {
            let ulps = worst(tanh_f32, f64::tanh, lo, hi);
            assert!(ulps <= 4.0, "tanh_f32 off by {ulps} ulp on [{lo}, {hi}]");
        }
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(20.0), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_f32_is_within_a_few_ulp_and_saturates() {
        for (lo, hi) in [(-87.0, 88.7), (-1.0, 1.0), (-1e-3, 1e-3)] {
            let ulps = worst(exp_f32, f64::exp, lo, hi);
            assert!(ulps <= 3.0, "exp_f32 off by {ulps} ulp on [{lo}, {hi}]");
        }
        // Subnormal results, to within one subnormal step.
        for x in [-88.0f32, -95.0, -100.0, -103.0] {
            let want = f64::from(x).exp();
            assert!(
                (f64::from(exp_f32(x)) - want).abs() <= 1.5e-45,
                "exp_f32({x})"
            );
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    /// The slice forms (the vectorised loops, whichever this processor runs) give what the
    /// scalar functions give, on a length that leaves a remainder for every vector width.
    #[test]
    fn slice_activations_match_the_scalar_ones() {
        let xs: Vec<f32> = (0..1037).map(|i| (i as f32 - 518.0) * 0.031).collect();
        let mut s = xs.clone();
        f32::sigmoid_slice(&mut s);
        let mut t = xs.clone();
        f32::tanh_slice(&mut t);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(s[i].to_bits(), sigmoid_f32(x).to_bits(), "sigmoid({x})");
            assert_eq!(t[i].to_bits(), tanh_f32(x).to_bits(), "tanh({x})");
            let want = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!((f64::from(s[i]) - want).abs() <= 4.0 * f64::from(f32::EPSILON) * want);
        }
        assert!(sigmoid_f32(f32::NAN).is_nan());
        assert_eq!(sigmoid_f32(-200.0), 0.0);
        assert_eq!(sigmoid_f32(200.0), 1.0);
    }
}
