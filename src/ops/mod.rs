//! The public ops: each checks devices and shapes once on the host, then records its WGSL kernel
//! (through `crate::kernels`) or runs its CPU twin (`crate::kernels::cpu`) on the same params.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod dtype;
pub(crate) mod elementwise;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optimizer;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod sample;
pub(crate) mod softmax;

pub(crate) use crate::tensor::{read_only_f16, same_device, same_device_any_dtype};

/// Casts a size the tensor checks already bounded by 2³² − 1.
pub(crate) fn u32_of(v: usize) -> u32 {
    u32::try_from(v).expect("tensor sizes are checked to fit u32 at creation")
}

/// What computes the CPU path's f32 products on this processor: `"avx512"` or `"avx2+fma"` (the
/// engine's own microkernels, chosen at run time) or `"matrixmultiply"` (on other processors, or
/// when `TIMELOOM_CPU_GEMM=matrixmultiply` was set before the first product).
///
/// ```
/// let gemm = timeloom::cpu_gemm();
/// assert!(["avx512", "avx2+fma", "matrixmultiply"].contains(&gemm));
/// ```
pub fn cpu_gemm() -> &'static str {
    crate::kernels::cpu::gemm_name()
}
