//! CPU twin of shaders/binary.wgsl: y = f(a, b) with broadcasting through strides, in chunks on
//! the pool.

use super::{Float, StridedOffsets};
use crate::kernels::binary::Params;

/// y = f(a, b) over `p`'s elements for one `f`, in chunks on the pool.
fn map<F: Float>(p: &Params, a: &[F], b: &[F], y: &mut [F], f: impl Fn(F, F) -> F + Sync) {
    let rank = p.rank as usize;
    let shape = &p.shape[..rank];
    let (a, b) = (&a[p.a_off as usize..], &b[p.b_off as usize..]);
    let contiguous = p.contiguous == 1;
    super::for_chunks(
        &mut y[p.y_off as usize..][..p.numel as usize],
        |start, out| {
            if contiguous {
                let (a, b) = (&a[start..start + out.len()], &b[start..start + out.len()]);
                for ((o, &u), &v) in out.iter_mut().zip(a).zip(b) {
                    *o = f(u, v);
                }
            } else {
                let ia = StridedOffsets::new(start, shape, &p.a_strides[..rank]);
                let ib = StridedOffsets::new(start, shape, &p.b_strides[..rank]);
                for ((o, ia), ib) in out.iter_mut().zip(ia).zip(ib) {
                    *o = f(a[ia], b[ib]);
                }
            }
        },
    );
}

pub(crate) fn binary<F: Float>(p: &Params, a: &[F], b: &[F], y: &mut [F]) {
    // One loop per op, the op chosen once (not per element).
    match p.op {
        1 => map(p, a, b, y, |u, v| u - v),
        2 => map(p, a, b, y, |u, v| u * v),
        3 => map(p, a, b, y, |u, v| u / v),
        4 => map(p, a, b, y, F::max),
        5 => map(p, a, b, y, F::min),
        6 => map(p, a, b, y, |u, v| if u == v { F::ONE } else { F::ZERO }),
        _ => map(p, a, b, y, |u, v| u + v),
    }
}
