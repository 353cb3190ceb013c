//! Device: where a tensor lives and where the ops on it run: `Device::Gpu` (the WGSL kernels) or
//! `Device::Cpu` (their CPU twins). Nothing moves between devices unless asked.

use std::fmt;

use crate::gpu::Gpu;

/// Where a tensor lives and its ops run.
///
/// ```
/// use timeloom::{Device, Tensor};
/// let x = Tensor::from_slice(&Device::Cpu, &[1.0, -2.0, 3.0], &[3])?;
/// assert_eq!(x.relu()?.read_blocking()?, vec![1.0, 0.0, 3.0]);
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum Device {
    /// A wgpu device: every op is a WGSL compute shader.
    Gpu(Gpu),
    /// The host: every op is the CPU twin of its kernel, on rayon's global thread pool
    /// (`RAYON_NUM_THREADS` sets its size). Called from a thread of a rayon pool (inside a
    /// `par_iter`, say), the twins run on that thread alone: waiting on the pool there could run
    /// another of the caller's tasks in the middle of an op. f32 products run on the engine's
    /// own AVX-512 or AVX2 + FMA microkernels where the processor has them (see
    /// [`cpu_gemm`](crate::cpu_gemm)); `TIMELOOM_CPU_GEMM=matrixmultiply` in the environment selects the
    /// portable `matrixmultiply` instead, and `TIMELOOM_CPU_GEMM=avx2` the AVX2 kernel on an
    /// AVX-512 processor, for comparison.
    Cpu,
}

impl Device {
    /// Opens the best GPU (see [`Gpu::new`]), blocking.
    pub fn gpu() -> crate::Result<Device> {
        Gpu::new_blocking().map(Device::Gpu)
    }

    /// Whether `self` and `other` are the same device.
    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => a.same_device(b),
            _ => false,
        }
    }

    /// The GPU, if this is one.
    pub fn as_gpu(&self) -> Option<&Gpu> {
        match self {
            Device::Gpu(g) => Some(g),
            Device::Cpu => None,
        }
    }
}

impl From<Gpu> for Device {
    fn from(g: Gpu) -> Device {
        Device::Gpu(g)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Gpu(g) => write!(f, "gpu ({})", g.adapter().name),
            Device::Cpu => write!(f, "cpu"),
        }
    }
}
