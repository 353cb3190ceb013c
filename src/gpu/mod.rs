//! The device layer: the `Gpu` context, the buffer pool, the pipeline cache, the pending encoder,
//! readback, the counters and the device-time profile. Kernels live in `crate::kernels`; this module knows none of them.

mod context;
pub(crate) mod encoder;
pub(crate) mod pipelines;
pub(crate) mod pool;
pub(crate) mod profile;
mod readback;
mod stats;
pub(crate) mod tuning_cache;

pub(crate) use context::GpuInner;
pub use context::{AdapterSummary, Gpu, GpuOptions, OptionalFeatures};
pub use profile::{KernelTime, Profile};
pub use stats::Stats;

/// Locks `m`, ignoring poisoning: every critical section leaves its state consistent.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
