//! # timeloom
//!
//! A deep-learning engine whose every numeric operation is a WGSL compute shader run through
//! [wgpu](https://wgpu.rs) (Vulkan, Metal, DX12, GL), with a CPU twin of each kernel that serves
//! as the test oracle, the CPU side of every benchmark and a way to run without a GPU driver.
//!
//! Ops record dispatches into one pending command encoder and nothing waits for the device until
//! a value is read, so a whole training step is one submission. [`Gpu::stats`] counts dispatches,
//! submissions, pipeline compiles, pool traffic and bytes moved.
//!
//! ```no_run
//! use timeloom::{Device, Gpu, Tensor};
//! let gpu = Gpu::new_blocking()?;             // or Gpu::from_wgpu(device, queue) in an app
//! let dev = Device::Gpu(gpu.clone());
//! let a = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let c = a.matmul(&a.t()?)?.relu()?;        // recorded, not yet submitted
//! println!("{:?}", c.read_blocking()?);      // one submission, then the readback
//! println!("{:?}", gpu.stats());
//! # Ok::<(), timeloom::Error>(())
//! ```
//!
//! The design is in ARCHITECTURE.md; every kernel is a file in `shaders/` with a Rust owner in
//! `src/kernels/` and a CPU twin in `src/kernels/cpu/` of the same name.

#![warn(missing_docs)]

pub mod data;
mod device;
pub mod diagnostics;
mod error;
mod gpu;
pub mod init;
pub mod io;
pub(crate) mod kernels;
pub mod nn;
mod ops;
pub mod optim;
pub mod recurrent;
mod rng;
mod tensor;

pub use device::{Chosen, Device};
pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Gpu, GpuOptions, KernelTime, OptionalFeatures, Profile, Stats};
pub use ops::attention::{attention, attention_reference, AttentionOptions};
pub use ops::conv::ConvOptions;
pub use ops::cpu_gemm;
pub use ops::loss::{bce_with_logits, mse_loss, CrossEntropy, Reduction};
pub use ops::matmul::{Activation, Matmul};
pub use ops::norm::{embedding, sinusoidal_positions};
pub use ops::pool::MAX_POOL_KERNEL;
pub use ops::sample::SampleOptions;
pub use optim::{
    Algorithm, LrLambda, NormType, Optimizer, ParamGroup, ParamState, ReduceOnPlateau, Schedule,
};
pub use rng::Rng;
pub use tensor::autodiff::{is_grad_enabled, no_grad};
pub use tensor::{DType, Id, Tensor, MAX_RANK};

/// Re-export of the wgpu this crate is built against, for [`Gpu::from_wgpu`].
pub use wgpu;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod layering;
