//! The f32 GEMM of the CPU path: C = α·A·B + β·C on one thread, blocked as BLIS blocks it (A
//! packed into row panels of the microkernel's height, B packed into column strips of its width,
//! or read in place when its rows are contiguous and few A panels reuse it), with register-tiled
//! microkernels for AVX-512 and for AVX2 + FMA chosen at run time. Where neither exists, and for
//! f64 (the gradient checks' type), `matrixmultiply` computes instead. `parallel_gemm` splits a
//! product over the pool and hands each block here.

use std::cell::RefCell;

/// The instruction set a microkernel is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 16 lanes, 32 registers: an 8 × 32 tile.
    Avx512,
    /// 8 lanes, 16 registers: a 6 × 16 tile.
    Avx2,
}

impl Isa {
    /// The best microkernel this processor runs, if any (detected once, then a load).
    pub(crate) fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::sync::OnceLock;
            static ISA: OnceLock<Option<Isa>> = OnceLock::new();
            *ISA.get_or_init(|| {
                let asked = std::env::var_os("TIMELOOM_CPU_GEMM");
                let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                if asked.as_ref().is_some_and(|v| v == "matrixmultiply") {
                    None
                } else if asked.is_some_and(|v| v == "avx2") && avx2 {
                    // For comparing the kernels on one machine.
                    Some(Isa::Avx2)
                } else if is_x86_feature_detected!("avx512f") {
                    Some(Isa::Avx512)
                } else if avx2 {
                    Some(Isa::Avx2)
                } else {
                    None
                }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Rows and columns of the microkernel's tile of C.
    fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (8, 32),
            Isa::Avx2 => (6, 16),
        }
    }
}

/// Depth of one packed block (k): a B strip of KC × 32 floats (32 KiB) stays in L1.
const KC: usize = 256;
/// Rows of A packed at once: MC × KC floats (96 KiB) stay in L2.
const MC: usize = 96;
/// Columns of B packed at once: KC × NC floats (4 MiB) at most.
const NC: usize = 4096;
/// B is read in place (rows contiguous) when at most this many A panels would reuse each strip:
/// packing it would cost about as much as the product saves.
const DIRECT_B_MAX_PANELS: usize = 8;

thread_local! {
    /// This thread's packing buffers (A panels, B strips, an edge strip), kept between calls.
    static PACK: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// C = α·A·B + β·C for `[m, k, n]` on this thread, each operand (pointer, row stride, column
/// stride); β = 0 does not read C.
///
/// # Safety
/// Every element addressed by (m, k, n) and the strides lies inside its allocation, and C does
/// not overlap A or B.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let op = Operands {
        a: (a, rsa, csa),
        b: (b, rsb, csb),
        c: (c, rsc, csc),
    };
    match Isa::detect() {
        // SAFETY: forwarded from the caller; the ISA was detected on this processor.
        Some(isa) => unsafe { sgemm_with(isa, [m, k, n], alpha, op, beta) },
        // SAFETY: forwarded from the caller.
        None => unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        },
    }
}

/// acc[j] += av·row[j] with one rounding per term where the microkernel runs (its fused
/// multiply-adds), else a product and a sum: the GEMV path's sums, rounded as a row of a
/// many-row product is.
pub(crate) fn accumulate_row(acc: &mut [f32], av: f32, row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if Isa::detect().is_some() && is_x86_feature_detected!("fma") {
        // SAFETY: the processor has FMA (detected just above).
        return unsafe { x86::accumulate_row(acc, av, row) };
    }
    for (s, &v) in acc.iter_mut().zip(row) {
        *s += av * v;
    }
}

/// The depth blocks [`sgemm`] sums one after the other where the microkernel runs (KC); `None`
/// where matrixmultiply does, whose rounding a row loop does not reproduce.
pub(crate) fn depth_block(_k: usize) -> Option<usize> {
    Isa::detect().map(|_| KC)
}

/// The three operands of a product: (pointer, row stride, column stride).
#[derive(Clone, Copy)]
pub(crate) struct Operands {
    pub(crate) a: (*const f32, isize, isize),
    pub(crate) b: (*const f32, isize, isize),
    pub(crate) c: (*mut f32, isize, isize),
}

/// A right operand B [k, n] packed once for many products that share it (a recurrent layer's
/// weights, multiplied every timestep): each KC-deep block as the microkernel's strips, zero
/// padded to whole strips, so a product neither packs B nor reads it in place across pages.
pub(crate) struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    /// k × n rounded up to whole strips: depth block pc (a multiple of KC) starts at pc·n_pad,
    /// and its strip of columns j.. (a multiple of the tile's width) at pc·n_pad + j·kc.
    data: Vec<f32>,
}

impl PackedB {
    /// B [k, n] with contiguous rows `rsb` apart, for `isa`'s microkernel.
    ///
    /// # Panics
    /// If `b` does not hold k rows of n.
    pub(crate) fn new(isa: Isa, b: &[f32], [k, n]: [usize; 2], rsb: usize) -> PackedB {
        assert!(
            k == 0 || n == 0 || (k - 1) * rsb + n <= b.len(),
            "PackedB: {k} rows of {n}, {rsb} apart, do not fit in {} floats",
            b.len()
        );
        // SAFETY: B[0..k, 0..n] lies inside `b` (asserted).
        unsafe { PackedB::from_raw(isa, [k, n], (b.as_ptr(), rsb as isize, 1)) }
    }

    /// B [k, n] at (pointer, row stride, column stride), either layout: its strips are packed
    /// on the pool when B is large and this thread may fork (each strip is its own region).
    ///
    /// # Safety
    /// B's k × n elements lie inside its allocation.
    pub(crate) unsafe fn from_raw(
        isa: Isa,
        [k, n]: [usize; 2],
        b: (*const f32, isize, isize),
    ) -> PackedB {
        use rayon::prelude::*;
        let nr = isa.tile().1;
        let n_pad = n.next_multiple_of(nr);
        let mut data = vec![0.0; k * n_pad];
        // Depth blocks, each KC × n_pad (the last shallower), then their strips.
        let mut blocks = Vec::with_capacity(k.div_ceil(KC));
        let mut rest = &mut data[..];
        for pc in (0..k).step_by(KC) {
            let (block, tail) = rest.split_at_mut(KC.min(k - pc) * n_pad);
            blocks.push((pc, block));
            rest = tail;
        }
        let b = super::Shared(b);
        let strip = |pc: usize, s: usize, dst: &mut [f32]| {
            let (kc, j) = (KC.min(k - pc), s * nr);
            // SAFETY: B[pc..pc + kc, j..j + nr (or n)] lies inside B (the caller's contract).
            unsafe { pack_b(dst, nr, kc, nr.min(n - j), offset(b.get(), pc, j)) };
        };
        if k * n >= 1 << 18 && super::may_fork() {
            blocks.into_par_iter().for_each(|(pc, block)| {
                let kc = KC.min(k - pc);
                block
                    .par_chunks_mut(kc * nr)
                    .enumerate()
                    .for_each(|(s, dst)| strip(pc, s, dst));
            });
        } else {
            for (pc, block) in blocks {
                let kc = KC.min(k - pc);
                for (s, dst) in block.chunks_mut(kc * nr).enumerate() {
                    strip(pc, s, dst);
                }
            }
        }
        PackedB { isa, k, n, data }
    }

    /// The strip of columns j.. (a multiple of the tile's width) in depth block pc.
    fn strip(&self, pc: usize, kc: usize, j: usize) -> *const f32 {
        let n_pad = self.n.next_multiple_of(self.isa.tile().1);
        self.data[pc * n_pad + j * kc..].as_ptr()
    }
}

/// C = α·A·B + β·C for A [m, k] on this thread, B packed beforehand (its k and n).
///
/// # Safety
/// As [`sgemm`] for A and C.
pub(crate) unsafe fn sgemm_packed(
    m: usize,
    alpha: f32,
    a: (*const f32, isize, isize),
    b: &PackedB,
    beta: f32,
    c: (*mut f32, isize, isize),
) {
    let op = Operands {
        a,
        b: (std::ptr::null(), 0, 0),
        c,
    };
    // SAFETY: forwarded from the caller; the ISA was the one B was packed for, detected here.
    unsafe { blocked(b.isa, [m, b.k, b.n], alpha, op, Some(b), beta) }
}

/// [`sgemm`] through one ISA's microkernel (tests run every ISA the processor has).
///
/// # Safety
/// As [`sgemm`], and `isa` runs on this processor.
pub(crate) unsafe fn sgemm_with(isa: Isa, mkn: [usize; 3], alpha: f32, op: Operands, beta: f32) {
    // SAFETY: forwarded from the caller.
    unsafe { blocked(isa, mkn, alpha, op, None, beta) }
}

/// The blocked product: B from `packed` when given (`op.b` unused), else packed per block or
/// read in place.
///
/// # Safety
/// As [`sgemm_with`].
unsafe fn blocked(
    isa: Isa,
    [m, k, n]: [usize; 3],
    alpha: f32,
    op: Operands,
    packed: Option<&PackedB>,
    beta: f32,
) {
    let (cp, rsc, csc) = op.c;
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        // C = β·C (β = 0 writes zeros without reading).
        for i in 0..m as isize {
            for j in 0..n as isize {
                // SAFETY: C[i, j] is inside C.
                unsafe {
                    let e = cp.offset(i * rsc + j * csc);
                    *e = if beta == 0.0 { 0.0 } else { beta * *e };
                }
            }
        }
        return;
    }
    let (mr, nr) = isa.tile();
    let direct_b =
        packed.is_none() && op.b.2 == 1 && op.b.1 > 0 && m.div_ceil(mr) <= DIRECT_B_MAX_PANELS;
    PACK.with(|cell| {
        let mut fresh = Default::default();
        let mut held = cell.try_borrow_mut();
        let [pa, pb, edge]: &mut [Vec<f32>; 3] = match held {
            Ok(ref mut v) => v,
            Err(_) => &mut fresh,
        };
        let kc_max = KC.min(k);
        grow(pa, MC.min(m).next_multiple_of(mr) * kc_max);
        grow(
            pb,
            if direct_b || packed.is_some() {
                nr
            } else {
                NC.min(n).next_multiple_of(nr)
            } * kc_max,
        );
        grow(edge, nr * kc_max);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // The first depth block applies β; later ones add to what it wrote.
                let beta = if pc == 0 { beta } else { 1.0 };
                if !direct_b && packed.is_none() {
                    // SAFETY: B[pc.., jc..] of kc × nc is inside B.
                    unsafe { pack_b(pb, nr, kc, nc, offset(op.b, pc, jc)) };
                }
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    // SAFETY: A[ic.., pc..] of mc × kc is inside A.
                    unsafe { pack_a(pa, mr, mc, kc, offset(op.a, ic, pc)) };
                    for jr in (0..nc).step_by(nr) {
                        let cols = nr.min(nc - jr);
                        // The strip: packed (stride nr); read in place by the first panel,
                        // which also copies it into `pb` for the others (rows of B a multiple
                        // of 4 KiB apart share one set of L1 and would not stay there); or
                        // the edge, packed.
                        let (strip, rsb, copy) = if let Some(p) = packed {
                            (p.strip(pc, kc, jc + jr), nr, false)
                        } else if !direct_b {
                            (pb[jr * kc..].as_ptr(), nr, false)
                        } else if cols == nr {
                            let (bp, rsb, _) = op.b;
                            // SAFETY: B[pc, jc + jr] is inside B.
                            let at = unsafe { bp.offset(pc as isize * rsb + (jc + jr) as isize) };
                            (at, rsb as usize, mc > mr)
                        } else {
                            // SAFETY: B[pc.., jc + jr..] of kc × cols is inside B.
                            unsafe { pack_b(edge, nr, kc, cols, offset(op.b, pc, jc + jr)) };
                            (edge.as_ptr(), nr, false)
                        };
                        for ir in (0..mc).step_by(mr) {
                            let rows = mr.min(mc - ir);
                            let ap = pa[ir * kc..].as_ptr();
                            let (ci, cj) = (ic + ir, jc + jr);
                            let (bs, rsb, copy_to) = match (copy, ir) {
                                (false, _) => (strip, rsb, std::ptr::null_mut()),
                                (true, 0) => (strip, rsb, pb.as_mut_ptr()),
                                (true, _) => (pb.as_ptr(), nr, std::ptr::null_mut()),
                            };
                            // SAFETY: C[ci.., cj..] of rows × cols is inside C; the panel and
                            // strip hold kc × mr and kc × nr floats, as does `pb` for a copy.
                            unsafe {
                                tile(
                                    isa,
                                    kc,
                                    ap,
                                    (bs, rsb, copy_to),
                                    alpha,
                                    beta,
                                    [rows, cols],
                                    (cp.offset(ci as isize * rsc + cj as isize * csc), rsc, csc),
                                )
                            };
                        }
                    }
                }
            }
        }
    });
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

fn offset<P: Copy>(
    (p, rs, cs): (*const P, isize, isize),
    i: usize,
    j: usize,
) -> (*const P, isize, isize) {
    // SAFETY (of the use): callers pass indices inside the operand; wrapping_offset computes
    // the address without asserting it.
    (p.wrapping_offset(i as isize * rs + j as isize * cs), rs, cs)
}

/// A[0..mc, 0..kc] into panels of `mr` rows, each kc × mr with a row's values side by side per
/// depth (rows past mc are zeros).
///
/// # Safety
/// A's mc × kc elements lie inside its allocation.
unsafe fn pack_a(
    pa: &mut [f32],
    mr: usize,
    mc: usize,
    kc: usize,
    (a, rsa, csa): (*const f32, isize, isize),
) {
    let pa = &mut pa[..mc.next_multiple_of(mr) * kc];
    if rsa.unsigned_abs() < csa.unsigned_abs() {
        // A's columns are contiguous (a transposed view): walk each column's mc rows in turn,
        // dealing them to the panels (a column per depth, not a gather across columns).
        for p in 0..kc {
            // SAFETY: A[0..mc, p] lies inside A.
            let col = unsafe { a.offset(p as isize * csa) };
            if rsa == 1 && p + 8 < kc {
                // Columns a page or more apart are not prefetched by the hardware.
                prefetch(col.wrapping_offset(8 * csa), mc);
            }
            for (panel, dst) in pa.chunks_exact_mut(mr * kc).enumerate() {
                let i0 = panel * mr;
                let rows = mr.min(mc - i0);
                let out = &mut dst[p * mr..(p + 1) * mr];
                for (i, o) in out[..rows].iter_mut().enumerate() {
                    // SAFETY: as above.
                    *o = unsafe { *col.offset((i0 + i) as isize * rsa) };
                }
                out[rows..].fill(0.0);
            }
        }
        return;
    }
    // A's rows are contiguous (the usual case): each panel is a transpose of mr rows. Packing
    // is the whole cost of a product's A side, and with few columns in C (dX = dG·W_ih, N = I)
    // each packed float feeds only a few microkernel calls: a scalar scatter (a store every mr
    // floats) cost about as much as the product.
    for (panel, dst) in pa.chunks_exact_mut(mr * kc).enumerate() {
        let i0 = panel * mr;
        let rows = mr.min(mc - i0);
        // SAFETY: rows i0..i0 + rows of A, depth 0..kc, lie inside A (the caller's contract).
        let row = |i: usize| unsafe { a.offset((i0 + i) as isize * rsa) };
        let mut p0 = 0;
        #[cfg(target_arch = "x86_64")]
        if mr == 8 && rows == 8 && csa == 1 {
            // Eight columns at a time, transposed in registers. mr = 8 is the AVX-512 tile,
            // so the processor has AVX.
            let rows: [*const f32; 8] = std::array::from_fn(row);
            while p0 + 8 <= kc {
                // SAFETY: depths p0..p0 + 8 of the 8 rows are inside A; dst holds 8 × 8
                // floats from p0·8 (kc·8 in all).
                unsafe { x86::transpose8(rows, p0, dst[p0 * 8..p0 * 8 + 64].as_mut_ptr(), 8) };
                p0 += 8;
            }
        }
        for (p, out) in dst.chunks_exact_mut(mr).enumerate().skip(p0) {
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: as above.
                *o = if i < rows {
                    unsafe { *row(i).offset(p as isize * csa) }
                } else {
                    0.0
                };
            }
        }
    }
}

/// Asks for the cache lines of `len` floats from `at` (a hint: nothing is read or checked).
#[inline(always)]
fn prefetch(at: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for l in (0..len).step_by(16) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint; it does not fault on any address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(l) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}

/// B[0..kc, 0..nc] into strips of `nr` columns, each kc × nr with a depth's values side by side
/// (columns past nc are zeros).
///
/// # Safety
/// B's kc × nc elements lie inside its allocation.
unsafe fn pack_b(
    pb: &mut [f32],
    nr: usize,
    kc: usize,
    nc: usize,
    (b, rsb, csb): (*const f32, isize, isize),
) {
    for (strip, dst) in pb[..nc.next_multiple_of(nr) * kc]
        .chunks_exact_mut(nr * kc)
        .enumerate()
    {
        let j0 = strip * nr;
        let cols = nr.min(nc - j0);
        if csb != 1 && rsb.unsigned_abs() < csb.unsigned_abs() {
            // B's columns are contiguous (a transposed view: the convolution's weight gradient
            // dY·colsᵀ, an attention tile's Kᵀ): 8 × 8 blocks of columns and depths transposed
            // in registers, the rest column by column, a column's depths in turn.
            let full = if cfg!(target_arch = "x86_64") && rsb == 1 {
                cols / 8 * 8
            } else {
                0
            };
            let kc8 = kc / 8 * 8;
            #[cfg(target_arch = "x86_64")]
            for jj in (0..full).step_by(8) {
                // SAFETY: columns j0 + jj.. + 8 of B, depths 0..kc, lie inside B.
                let rows: [*const f32; 8] =
                    std::array::from_fn(|r| unsafe { b.offset((j0 + jj + r) as isize * csb) });
                for p0 in (0..kc8).step_by(8) {
                    let at = &mut dst[p0 * nr + jj..(p0 + 7) * nr + jj + 8];
                    // SAFETY: depths p0..p0 + 8 of the 8 columns are inside B; `at` holds
                    // rows p0..p0 + 8 of the strip from column jj on (8 each, nr apart). Every
                    // microkernel this packs for needs AVX.
                    unsafe { x86::transpose8(rows, p0, at.as_mut_ptr(), nr) };
                }
            }
            for j in 0..nr {
                if j >= cols {
                    (0..kc).for_each(|p| dst[p * nr + j] = 0.0);
                    continue;
                }
                // SAFETY: B[0..kc, j0 + j] lies inside B.
                let col = unsafe { b.offset((j0 + j) as isize * csb) };
                let done = if j < full { kc8 } else { 0 };
                for p in done..kc {
                    // SAFETY: as above.
                    dst[p * nr + j] = unsafe { *col.offset(p as isize * rsb) };
                }
            }
            continue;
        }
        for p in 0..kc {
            let out = &mut dst[p * nr..(p + 1) * nr];
            // SAFETY: B[p, j0..j0 + cols] lies inside B.
            let row = unsafe { b.offset(p as isize * rsb + j0 as isize * csb) };
            if csb == 1 {
                // SAFETY: as above, contiguous.
                out[..cols].copy_from_slice(unsafe { std::slice::from_raw_parts(row, cols) });
            } else {
                for (j, o) in out[..cols].iter_mut().enumerate() {
                    // SAFETY: as above.
                    *o = unsafe { *row.offset(j as isize * csb) };
                }
            }
            out[cols..].fill(0.0);
        }
    }
}

/// One tile of C: rows × cols (at most the microkernel's) from a packed A panel and a B strip
/// `b` = (start, floats between depth rows, where to copy it packed or null). A full tile with contiguous columns is written by the
/// microkernel; an edge tile goes through a local tile and is merged.
///
/// # Safety
/// As [`sgemm_with`] for the tile's part of C, A and B.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile(
    isa: Isa,
    kc: usize,
    ap: *const f32,
    b: (*const f32, usize, *mut f32),
    alpha: f32,
    beta: f32,
    [rows, cols]: [usize; 2],
    (c, rsc, csc): (*mut f32, isize, isize),
) {
    let (mr, nr) = isa.tile();
    if rows == mr && cols == nr && csc == 1 {
        // SAFETY: forwarded; the full tile of C is inside C.
        return unsafe { micro(isa, kc, ap, b, alpha, beta, c, rsc as usize) };
    }
    let mut t = [0f32; 8 * 32];
    // SAFETY: t holds mr × nr floats.
    unsafe { micro(isa, kc, ap, b, 1.0, 0.0, t.as_mut_ptr(), nr) };
    for i in 0..rows {
        for j in 0..cols {
            // SAFETY: C[i, j] of the tile is inside C.
            unsafe {
                let e = c.offset(i as isize * rsc + j as isize * csc);
                let v = alpha * t[i * nr + j];
                // β·C + α·acc with one rounding, as the full tile's epilogue.
                *e = if beta == 0.0 { v } else { beta.mul_add(*e, v) };
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn micro(
    isa: Isa,
    kc: usize,
    ap: *const f32,
    (bs, rsb, copy): (*const f32, usize, *mut f32),
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded; the ISA was detected on this processor.
    unsafe {
        use x86::{micro_avx2 as avx2, micro_avx512 as avx512};
        match (isa, copy.is_null()) {
            (Isa::Avx512, true) => avx512::<false>(kc, ap, bs, rsb, copy, alpha, beta, c, rsc),
            (Isa::Avx512, false) => avx512::<true>(kc, ap, bs, rsb, copy, alpha, beta, c, rsc),
            (Isa::Avx2, true) => avx2::<false>(kc, ap, bs, rsb, copy, alpha, beta, c, rsc),
            (Isa::Avx2, false) => avx2::<true>(kc, ap, bs, rsb, copy, alpha, beta, c, rsc),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, kc, ap, bs, rsb, copy, alpha, beta, c, rsc);
        unreachable!("no microkernel on this architecture");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// dst[c·stride + r] = rows[r][p0 + c] for r, c < 8: an 8 × 8 block transposed into a
    /// packed panel or strip, eight loads, 24 shuffles and eight stores.
    ///
    /// # Safety
    /// The processor has AVX; rows[r][p0..p0 + 8] are readable and dst[c·stride..][..8]
    /// writable for c < 8.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose8(
        rows: [*const f32; 8],
        p0: usize,
        dst: *mut f32,
        stride: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(p0)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (c, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(stride * c), v);
            }
        }
    }

    /// acc[j] = av·row[j] + acc[j] with one rounding (vectorised: `mul_add` is `vfmadd` here).
    ///
    /// # Safety
    /// The processor has FMA.
    #[target_feature(enable = "fma")]
    pub(super) unsafe fn accumulate_row(acc: &mut [f32], av: f32, row: &[f32]) {
        for (s, &v) in acc.iter_mut().zip(row) {
            *s = av.mul_add(v, *s);
        }
    }

    /// Depths ahead that an in-place B row is fetched.
    const PREFETCH: usize = 8;

    /// The microkernel: a tile of MR × (NV vectors) accumulators in registers, one depth at a
    /// time (NV vector loads of B, MR broadcasts of A, MR·NV fused multiply-adds), then
    /// C = α·acc + β·C (β = 0: C not read). COPY: B is read in place (rows `rsb` apart, fetched
    /// a few depths ahead: the hardware does not prefetch across pages) and stored packed at
    /// `copy` for the next panels.
    macro_rules! microkernel {
        ($name:ident, $feature:literal, $v:ty, $lanes:literal, $mr:literal, $nv:literal,
         $zero:ident, $set1:ident, $load:ident, $store:ident, $fma:ident, $mul:ident) => {
            #[target_feature(enable = $feature)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $name<const COPY: bool>(
                kc: usize,
                ap: *const f32,
                bs: *const f32,
                rsb: usize,
                copy: *mut f32,
                alpha: f32,
                beta: f32,
                c: *mut f32,
                rsc: usize,
            ) {
                let mut acc = [[$zero(); $nv]; $mr];
                let (mut a, mut b, mut out) = (ap, bs, copy);
                for p in 0..kc {
                    // SAFETY: the packed panel holds kc × MR floats, the strip kc rows of
                    // NV·lanes floats, rsb apart, and `copy` (when COPY) kc × NV·lanes.
                    unsafe {
                        if COPY && p + PREFETCH < kc {
                            let ahead = b.add(PREFETCH * rsb);
                            for l in (0..$nv * $lanes).step_by(16) {
                                _mm_prefetch::<_MM_HINT_T0>(ahead.add(l) as *const i8);
                            }
                        }
                        let mut bv = [$zero(); $nv];
                        for (v, x) in bv.iter_mut().enumerate() {
                            *x = $load(b.add(v * $lanes));
                            if COPY {
                                $store(out.add(v * $lanes), *x);
                            }
                        }
                        if COPY {
                            out = out.add($nv * $lanes);
                        }
                        for (i, row) in acc.iter_mut().enumerate() {
                            let av = $set1(*a.add(i));
                            for (x, bx) in row.iter_mut().zip(bv) {
                                *x = $fma(av, bx, *x);
                            }
                        }
                        a = a.add($mr);
                        b = b.add(rsb);
                    }
                }
                let (va, vb) = ($set1(alpha), $set1(beta));
                for (i, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        // SAFETY: C's tile is MR rows rsc apart of NV·lanes floats.
                        unsafe {
                            let e = c.add(i * rsc + v * $lanes);
                            let r = $mul(va, *x);
                            let r = if beta == 0.0 {
                                r
                            } else {
                                $fma(vb, $load(e), r)
                            };
                            $store(e, r);
                        }
                    }
                }
            }
        };
    }

    microkernel!(
        micro_avx512,
        "avx512f",
        __m512,
        16,
        8,
        2,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps
    );
    microkernel!(
        micro_avx2,
        "avx2,fma",
        __m256,
        8,
        6,
        2,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ISA this processor runs.
    fn isas() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
        }
        v
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Against the f64 sums, on awkward shapes (1, primes, one past a tile, a block, a depth
    /// block), every transpose of A and B, C with gaps between rows and columns, α and β, β = 0
    /// over NaN (C must not be read), and both ways of reading B.
    #[test]
    fn sgemm_matches_the_f64_sums_on_awkward_shapes_and_layouts() {
        let dims = [1usize, 2, 7, 9, 17, 33, 97, 130, 257];
        let mut cases = 0;
        for isa in isas() {
            for (s, &m) in dims.iter().enumerate() {
                for &k in &[1usize, 5, 64, 257, 300] {
                    // Two columns counts per (m, k): enough variety without a cube of cases.
                    for &n in &[
                        dims[(s + 3) % dims.len()],
                        dims[(s * 5 + 1) % dims.len()],
                        4099,
                    ] {
                        if n == 4099 && m * k > 257 * 5 {
                            continue;
                        }
                        for layout in 0..4 {
                            let (ta, tb) = (layout & 1 == 1, layout & 2 == 2);
                            let a = values(m * k, 1 + s as u32);
                            let b = values(k * n, 7 + layout as u32);
                            let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
                            let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
                            // C: rows 2n + 3 apart, columns 2 apart when layout is odd.
                            let csc = if layout % 2 == 1 { 2isize } else { 1 };
                            let rsc = (n as isize) * csc + 3;
                            let len = (m as isize - 1) * rsc + (n as isize - 1) * csc + 1;
                            let c0 = values(len as usize, 99);
                            let (alpha, beta) = match layout {
                                0 => (1.0f32, 0.0f32),
                                1 => (0.5, 1.0),
                                2 => (-1.5, 0.25),
                                _ => (1.0, 0.0),
                            };
                            let mut c = if beta == 0.0 {
                                vec![f32::NAN; len as usize]
                            } else {
                                c0.clone()
                            };
                            let op = Operands {
                                a: (a.as_ptr(), rsa, csa),
                                b: (b.as_ptr(), rsb, csb),
                                c: (c.as_mut_ptr(), rsc, csc),
                            };
                            // SAFETY: the strides address exactly the vectors above.
                            unsafe { sgemm_with(isa, [m, k, n], alpha, op, beta) };
                            if !tb {
                                // B packed beforehand: the same sums, bit for bit, gaps alike.
                                let packed = PackedB::new(isa, &b, [k, n], n);
                                let mut c2 = if beta == 0.0 {
                                    vec![f32::NAN; len as usize]
                                } else {
                                    c0.clone()
                                };
                                let (ap, cp) =
                                    ((a.as_ptr(), rsa, csa), (c2.as_mut_ptr(), rsc, csc));
                                // SAFETY: as above.
                                unsafe { sgemm_packed(m, alpha, ap, &packed, beta, cp) };
                                assert!(
                                    c2.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                                    "{isa:?} [{m},{k},{n}] layout {layout}: packed B differs"
                                );
                            }
                            for i in 0..m {
                                for j in 0..n {
                                    let mut s = 0f64;
                                    for p in 0..k {
                                        s += a[(i as isize * rsa + p as isize * csa) as usize]
                                            as f64
                                            * b[(p as isize * rsb + j as isize * csb) as usize]
                                                as f64;
                                    }
                                    let at = (i as isize * rsc + j as isize * csc) as usize;
                                    let want = alpha as f64 * s
                                        + if beta == 0.0 {
                                            0.0
                                        } else {
                                            beta as f64 * c0[at] as f64
                                        };
                                    let got = c[at] as f64;
                                    assert!(
                                        (got - want).abs() <= 1e-5 * (k as f64).sqrt() * (1.0 + want.abs()),
                                        "{isa:?} [{m},{k},{n}] layout {layout}: C[{i},{j}] = {got}, want {want}"
                                    );
                                }
                            }
                            // Between C's rows and columns nothing was written.
                            let before = if beta == 0.0 { f32::NAN.to_bits() } else { 0 };
                            for (at, v) in c.iter().enumerate() {
                                let (i, r) = (at as isize / rsc, at as isize % rsc);
                                if (i as usize) < m && r % csc == 0 && ((r / csc) as usize) < n {
                                    continue;
                                }
                                let want = if beta == 0.0 {
                                    before
                                } else {
                                    c0[at].to_bits()
                                };
                                assert_eq!(
                                    v.to_bits(),
                                    want,
                                    "{isa:?} [{m},{k},{n}] layout {layout}: gap {at} written"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        // The processor has no microkernel: nothing to test here (matrixmultiply computes).
        assert!(isas().is_empty() || cases > 100, "{cases} cases");
    }
}
