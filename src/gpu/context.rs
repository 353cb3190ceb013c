//! Gpu: the device, its queue, adapter facts and limits, and the engine state that lives per
//! device (buffer pool, pipeline cache, pending encoder, counters). `Gpu::new` opens a device of
//! its own; `Gpu::from_wgpu` runs on a device the host application owns.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::encoder::Pending;
use super::lock;
use super::pipelines::PipelineCache;
use super::pool::{next_buffer_id, BufferKind, BufferPool, RawBuffer};
use super::profile::{Profile, Profiler};
use super::stats::{Counters, Stats};
use crate::error::{Error, Result};

/// A handle to a GPU device and timeloom's state on it. Cheap to clone; `Send + Sync`.
///
/// ```
/// use timeloom::{Device, Gpu, Tensor};
/// let gpu = Gpu::new_blocking()?; // or Gpu::from_wgpu(device, queue) inside an application
/// println!("{}", gpu.adapter());
/// let dev = Device::Gpu(gpu.clone());
/// let a = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// assert_eq!(a.matmul(&a)?.read_blocking()?, [7.0, 10.0, 15.0, 22.0]); // compiles, autotunes
/// let before = gpu.stats();
/// let c = a.matmul(&a)?.relu()?.sum_all()?; // recorded, not yet submitted
/// assert_eq!(c.read_blocking()?, [54.0]);  // one submission, then the readback
/// let work = gpu.stats().since(&before);
/// assert_eq!((work.dispatches, work.submissions), (3, 1));
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone)]
pub struct Gpu {
    pub(crate) inner: Arc<GpuInner>,
}

/// Options for [`Gpu::with_options`]. The environment variables `TIMELOOM_BACKEND`
/// (`vulkan`, `metal`, `dx12`, `gl`) and `TIMELOOM_ADAPTER` (a substring of the adapter name)
/// fill the fields left `None`.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Only consider adapters of these backends.
    pub backends: Option<wgpu::Backends>,
    /// Only consider adapters whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    /// Time candidate matmul tile shapes at the first matmul of each shape class (one blocking
    /// wait per class). `None` means on: the device is ours, so waiting on it stalls nobody.
    pub autotune: Option<bool>,
    /// Whether a software adapter (wgpu's `DeviceType::Cpu`: llvmpipe, lavapipe, SwiftShader,
    /// WARP) may be chosen. `None` means yes, after every hardware adapter;
    /// [`Device::auto`](crate::Device::auto) says no, since the CPU path outruns them.
    pub software: Option<bool>,
    /// The folder where tuned choices (matmul tiles) persist between processes, one file per
    /// adapter and driver, so the second process on a machine tunes nothing. `None`:
    /// `$TIMELOOM_TUNING_CACHE`, else `$XDG_CACHE_HOME/timeloom`, else `~/.cache/timeloom`;
    /// `off` or an empty path keeps nothing. A stale or corrupt file is ignored, and every entry
    /// is checked against the engine's own candidates before it is used.
    pub tuning_cache: Option<std::path::PathBuf>,
    /// Time every dispatch on the device (GPU timestamps), for [`Gpu::take_profile`]. `None`:
    /// on when `TIMELOOM_PROFILE=1`. Each submission then waits for its timestamps, so profile a
    /// workload, not a deployment. Needs the adapter's `TIMESTAMP_QUERY_INSIDE_PASSES` (Vulkan,
    /// DX12, Metal on AMD and Intel); without it the device opens unprofiled and
    /// `take_profile` says so.
    pub profile: Option<bool>,
}

/// What an adapter is: name, backend, driver and type.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// "Vulkan", "Metal", "Dx12" or "Gl".
    pub backend: String,
    /// Driver name and version.
    pub driver: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, {})",
            self.name, self.backend, self.device_type, self.driver
        )
    }
}

/// Optional features an adapter offers; timeloom never assumes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalFeatures {
    /// WGSL `f16` arithmetic.
    pub shader_f16: bool,
    /// Subgroup operations.
    pub subgroups: bool,
    /// GPU timestamp queries.
    pub timestamp_query: bool,
}

#[derive(Debug, Clone)]
enum Fault {
    Lost(String),
    Gpu(String),
}

pub(crate) struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub adapter_features: wgpu::Features,
    /// True when timeloom created the device: only then does it ever block on the device.
    pub owned: bool,
    pub autotune: bool,
    pub id: u64,
    pub counters: Counters,
    pub pool: BufferPool,
    pub pipelines: PipelineCache,
    pub pending: Mutex<Pending>,
    /// Autotuned `override` values, keyed by kernel name and a shape class of the kernel's own
    /// choosing; the device layer only stores them.
    pub tuning: Mutex<HashMap<TuneKey, Vec<(&'static str, f64)>>>,
    /// The adapter's tuning file and what it held when the device was made (untrusted).
    pub tuning_cache: super::tuning_cache::TuningCache,
    /// Application buffers wrapped as tensors: their bind-group id and how many tensors wrap them.
    pub external: Mutex<HashMap<wgpu::Buffer, (u64, usize)>>,
    /// A tiny buffer bound where a kernel's optional input is absent.
    pub dummy: RawBuffer,
    /// Its twin for an optional read-write binding: one buffer may not be bound read-only and
    /// read-write in one dispatch, so the two placeholders are distinct.
    pub dummy_out: RawBuffer,
    fault: Arc<Mutex<Option<Fault>>>,
}

/// A tuning-cache key: the kernel's name and a shape class of the kernel's own choosing.
pub(crate) type TuneKey = (&'static str, u64);

static NEXT_GPU_ID: AtomicU64 = AtomicU64::new(1);

const NO_ADAPTER_HELP: &str = "wgpu found no Vulkan, Metal, DX12 or GL device.\n  \
    Install a GPU driver; on a headless Linux machine Mesa's lavapipe works \
    (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`), or use Device::Cpu.";

fn backends_from_env() -> Result<Option<wgpu::Backends>> {
    let Ok(v) = std::env::var("TIMELOOM_BACKEND") else {
        return Ok(None);
    };
    let b = match v.to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => {
            return Err(Error::InvalidArgument {
                op: "Gpu::new",
                message: format!(
                    "TIMELOOM_BACKEND={other:?} is not a backend; use vulkan, metal, dx12 or gl"
                ),
            })
        }
    };
    Ok(Some(b))
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// The limits timeloom asks for: WebGPU's defaults, or the adapter's own value where it offers
/// less (a kernel that needs more then returns `Unsupported` naming the limit, instead of the
/// device failing to open), raised to the adapter's values only where bigger tensors need it.
fn required_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    let d = wgpu::Limits::default();
    let mut l = wgpu::Limits::downlevel_defaults();
    l.max_storage_buffers_per_shader_stage = d
        .max_storage_buffers_per_shader_stage
        .min(adapter.max_storage_buffers_per_shader_stage);
    l.max_compute_invocations_per_workgroup = d
        .max_compute_invocations_per_workgroup
        .min(adapter.max_compute_invocations_per_workgroup);
    l.max_compute_workgroup_storage_size = d
        .max_compute_workgroup_storage_size
        .min(adapter.max_compute_workgroup_storage_size);
    l.max_compute_workgroup_size_x = d
        .max_compute_workgroup_size_x
        .min(adapter.max_compute_workgroup_size_x);
    l.max_compute_workgroup_size_y = d
        .max_compute_workgroup_size_y
        .min(adapter.max_compute_workgroup_size_y);
    l.max_compute_workgroups_per_dimension = d
        .max_compute_workgroups_per_dimension
        .min(adapter.max_compute_workgroups_per_dimension);
    l.max_storage_buffer_binding_size = adapter.max_storage_buffer_binding_size;
    l.max_buffer_size = adapter.max_buffer_size;
    l
}

impl Gpu {
    /// Opens a device on the best adapter (discrete before integrated before software), honouring
    /// `TIMELOOM_BACKEND` and `TIMELOOM_ADAPTER`.
    pub async fn new() -> Result<Gpu> {
        Gpu::with_options(GpuOptions::default()).await
    }

    /// [`Gpu::new`], blocking the calling thread.
    pub fn new_blocking() -> Result<Gpu> {
        pollster::block_on(Gpu::new())
    }

    /// Opens a device as [`Gpu::new`] does, with explicit options.
    pub async fn with_options(options: GpuOptions) -> Result<Gpu> {
        let backends = match options.backends {
            Some(b) => b,
            None => backends_from_env()?.unwrap_or(wgpu::Backends::all()),
        };
        let wanted = options
            .adapter
            .or_else(|| std::env::var("TIMELOOM_ADAPTER").ok())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase());
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = instance.enumerate_adapters(backends).await;
        let found: Vec<String> = adapters
            .iter()
            .map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend))
            .collect();
        let hardware_only = options.software == Some(false);
        let adapter = adapters
            .into_iter()
            .filter(|a| {
                wanted
                    .as_ref()
                    .is_none_or(|w| a.get_info().name.to_lowercase().contains(w))
            })
            .filter(|a| !hardware_only || a.get_info().device_type != wgpu::DeviceType::Cpu)
            .min_by_key(|a| type_rank(a.get_info().device_type));
        let Some(adapter) = adapter else {
            let message = match (&wanted, found.is_empty()) {
                (_, true) if hardware_only => {
                    "wgpu found no adapter at all (no Vulkan, Metal, DX12 or GL driver)".into()
                }
                (_, true) => NO_ADAPTER_HELP.to_string(),
                (Some(w), false) => format!(
                    "no adapter name contains {w:?} (TIMELOOM_ADAPTER); found: {}",
                    found.join(", ")
                ),
                (None, false) if hardware_only => {
                    format!("wgpu found only software adapters: {}", found.join(", "))
                }
                (None, false) => NO_ADAPTER_HELP.to_string(),
            };
            return Err(Error::NoAdapter { message });
        };
        let timestamps = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let profile = options.profile.unwrap_or_else(|| {
            std::env::var("TIMELOOM_PROFILE")
                .is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "on"))
        }) && adapter.features().contains(timestamps);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("timeloom"),
                required_features: if profile {
                    timestamps
                } else {
                    wgpu::Features::empty()
                },
                required_limits: required_limits(&adapter.limits()),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::NoAdapter {
                message: format!("{} could not open a device: {e}", adapter.get_info().name),
            })?;
        let gpu = Gpu::build(
            device,
            queue,
            adapter.get_info(),
            adapter.features(),
            true,
            options.autotune.unwrap_or(true),
            super::tuning_cache::folder(options.tuning_cache.as_deref()),
        );
        if profile {
            lock(&gpu.inner.pending).profiler =
                Some(Profiler::new(&gpu.inner.device, &gpu.inner.queue));
        }
        // Errors and loss on our own device become typed errors at the next call, never panics.
        let fault = gpu.inner.fault.clone();
        gpu.inner
            .device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let f = match e {
                    wgpu::Error::OutOfMemory { .. } => Fault::Gpu("out of memory".into()),
                    other => Fault::Gpu(other.to_string()),
                };
                lock(&fault).get_or_insert(f);
            }));
        let fault = gpu.inner.fault.clone();
        gpu.inner
            .device
            .set_device_lost_callback(move |reason, message| {
                *lock(&fault) = Some(Fault::Lost(format!("{reason:?}: {message}")));
            });
        Ok(gpu)
    }

    /// Runs timeloom on a device the host application owns. timeloom then submits to `queue`, never
    /// installs error or device-lost handlers on it, and never blocks on its poll on its own
    /// initiative: [`Tensor::read`](crate::Tensor::read) completes when the application polls the
    /// device (its event loop normally does).
    ///
    /// The device should offer `max_storage_buffers_per_shader_stage >= 8`.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let info = device.adapter_info();
        let features = device.features();
        // An application's device reads tuned choices but never tunes, so never writes.
        let cache = super::tuning_cache::folder(None);
        Gpu::build(device, queue, info, features, false, false, cache)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        adapter_features: wgpu::Features,
        owned: bool,
        autotune: bool,
        cache_folder: Option<std::path::PathBuf>,
    ) -> Gpu {
        let tuning_cache = super::tuning_cache::TuningCache::open(cache_folder, &info);
        let placeholder = || RawBuffer {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timeloom unused binding"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }),
            id: next_buffer_id(),
            class: 16,
            kind: BufferKind::Storage,
        };
        let (dummy, dummy_out) = (placeholder(), placeholder());
        let pending = Mutex::new(Pending::new(&device));
        Gpu {
            inner: Arc::new(GpuInner {
                limits: device.limits(),
                device,
                queue,
                info,
                adapter_features,
                owned,
                autotune,
                id: NEXT_GPU_ID.fetch_add(1, Ordering::Relaxed),
                counters: Counters::default(),
                pool: BufferPool::default(),
                pipelines: PipelineCache::default(),
                pending,
                tuning: Mutex::new(HashMap::new()),
                tuning_cache,
                external: Mutex::new(HashMap::new()),
                dummy,
                dummy_out,
                fault: Arc::new(Mutex::new(None)),
            }),
        }
    }

    /// Device time per kernel since the device was made or this was last called, then starts a
    /// new profile. Submits and waits for recorded work first, so the profile covers it.
    ///
    /// Only on a device made with [`GpuOptions::profile`] (or `TIMELOOM_PROFILE=1`) on an
    /// adapter with timestamp queries inside passes; elsewhere an [`Error::Unsupported`] says
    /// which of the two is missing.
    ///
    /// ```
    /// # use timeloom::{Device, Gpu, GpuOptions, Tensor};
    /// let options = GpuOptions { profile: Some(true), ..GpuOptions::default() };
    /// let gpu = pollster::block_on(Gpu::with_options(options))?;
    /// let a = Tensor::zeros(&Device::Gpu(gpu.clone()), &[256, 256])?;
    /// let _c = a.matmul(&a)?.relu()?;
    /// if gpu.profiling() {
    ///     let profile = gpu.take_profile()?; // submits, waits, and starts a new profile
    ///     print!("{}", profile.table(10)); // kernel, dispatches, ms, µs per dispatch, share
    ///     assert!(profile.dispatches >= 2);
    /// }
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn take_profile(&self) -> Result<Profile> {
        if lock(&self.inner.pending).profiler.is_none() {
            let why = if self
                .inner
                .adapter_features
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
            {
                "this device was made without it: create it with GpuOptions { profile: \
                 Some(true), .. } or set TIMELOOM_PROFILE=1"
            } else {
                "the adapter offers no timestamp queries inside passes \
                 (TIMESTAMP_QUERY_INSIDE_PASSES)"
            };
            return Err(Error::Unsupported {
                op: "take_profile",
                message: format!("no device-time profile: {why}"),
            });
        }
        self.inner.synchronize()?;
        let mut p = lock(&self.inner.pending);
        Ok(p.profiler
            .as_mut()
            .expect("checked above; never removed")
            .take(true))
    }

    /// Whether this device times its dispatches (see [`Gpu::take_profile`]).
    pub fn profiling(&self) -> bool {
        lock(&self.inner.pending).profiler.is_some()
    }

    /// The adapter's name, backend, type and driver.
    pub fn adapter(&self) -> AdapterSummary {
        let i = &self.inner.info;
        AdapterSummary {
            name: i.name.clone(),
            backend: format!("{:?}", i.backend),
            driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
            device_type: format!("{:?}", i.device_type),
        }
    }

    /// The limits of the device timeloom runs on.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The optional features the adapter offers (timeloom's kernels do not require any).
    pub fn optional_features(&self) -> OptionalFeatures {
        let f = self.inner.adapter_features;
        OptionalFeatures {
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            timestamp_query: f.contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }

    /// Whether timeloom created this device (see [`Gpu::from_wgpu`]).
    pub fn owns_device(&self) -> bool {
        self.inner.owned
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue timeloom submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Submits all recorded work as one command buffer. Does not wait for it.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_fault()?;
        let mut p = lock(&self.inner.pending);
        self.inner.flush_locked(&mut p);
        Ok(())
    }

    /// Submits recorded work and blocks until the device has finished all of it. Meant for
    /// benchmarks and tests; on a device timeloom does not own it still waits, because you asked.
    pub fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }

    /// Destroys the pool's free buffers, returning their bytes to the device. Buffers in use stay.
    pub fn trim_pool(&self) -> u64 {
        let mut p = lock(&self.inner.pending);
        self.inner.flush_locked(&mut p);
        p.clear_bind_groups();
        drop(p);
        self.inner.pool.trim(&self.inner.counters)
    }

    /// True when `self` and `other` are the same device.
    pub fn same_device(&self, other: &Gpu) -> bool {
        self.inner.id == other.inner.id
    }
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gpu({})", self.adapter())
    }
}

impl GpuInner {
    /// A typed error for a fault the device reported since the last call.
    pub(crate) fn check_fault(&self) -> Result<()> {
        let mut fault = lock(&self.fault);
        match fault.clone() {
            None => Ok(()),
            Some(Fault::Lost(reason)) => Err(Error::DeviceLost { reason }),
            Some(Fault::Gpu(message)) => {
                *fault = None;
                Err(Error::Gpu { message })
            }
        }
    }

    /// Submits and waits for everything recorded.
    pub(crate) fn synchronize(&self) -> Result<()> {
        let index = {
            let mut p = lock(&self.pending);
            self.flush_locked(&mut p)
        };
        self.wait(index)
    }

    /// The bind-group id of an application buffer, the same for every tensor that wraps it.
    pub(crate) fn adopt_external(&self, buffer: &wgpu::Buffer) -> u64 {
        let mut ext = lock(&self.external);
        let entry = ext.entry(buffer.clone()).or_insert((next_buffer_id(), 0));
        entry.1 += 1;
        entry.0
    }

    /// Called when a tensor wrapping `buffer` drops: after the last one, cached bind groups
    /// naming the buffer are dropped too, so timeloom holds no reference to it.
    pub(crate) fn release_external(&self, buffer: &wgpu::Buffer) {
        let mut ext = lock(&self.external);
        let Some(entry) = ext.get_mut(buffer) else {
            return;
        };
        entry.1 -= 1;
        if entry.1 == 0 {
            let id = entry.0;
            ext.remove(buffer);
            drop(ext);
            lock(&self.pending).forget_buffer(id);
        }
    }

    /// Saves `kernel`'s tuned choices in `tuning` (the locked map) to the adapter's tuning file,
    /// beside what the file held for other kernels.
    pub(crate) fn persist_tuning(
        &self,
        tuning: &HashMap<TuneKey, Vec<(&'static str, f64)>>,
        kernel: &'static str,
    ) {
        self.tuning_cache.write(
            kernel,
            tuning
                .iter()
                .filter(|((k, _), _)| *k == kernel)
                .map(|(&(_, class), v)| (class, v.as_slice())),
        );
    }

    /// Records a GPU error to be returned by the next call.
    pub(crate) fn report_fault(&self, message: String) {
        lock(&self.fault).get_or_insert(Fault::Gpu(message));
    }

    /// Blocks until the submission `index` (or everything) has finished.
    pub(crate) fn wait(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        Counters::add(&self.counters.blocking_waits, 1);
        let polled = self.device.poll(wgpu::PollType::Wait {
            submission_index: index,
            timeout: None,
        });
        // A lost device makes the poll fail too: report the loss, which says what to do.
        self.check_fault()?;
        polled.map_err(|e| Error::Gpu {
            message: format!("waiting for the device failed: {e}"),
        })?;
        Ok(())
    }

    /// A storage buffer for a kernel to write: may be one released earlier in this very batch.
    pub(crate) fn acquire_output(
        &self,
        bytes: u64,
        op: &'static str,
        what: &str,
    ) -> Result<RawBuffer> {
        let class = super::pool::size_class(bytes.max(4));
        if let Some(b) = self.reuse_retired(class) {
            return Ok(b);
        }
        self.acquire(bytes, op, what)
    }

    /// A storage buffer of at least `bytes` from the pool, checked against the device's limits;
    /// never one that unsubmitted work uses, so it may be the target of an upload.
    pub(crate) fn acquire(&self, bytes: u64, op: &'static str, what: &str) -> Result<RawBuffer> {
        self.check_fault()?;
        let limit = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(Error::TooLarge {
                op,
                what: what.to_string(),
                bytes,
                limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        self.pool.acquire(
            &self.device,
            &self.counters,
            BufferKind::Storage,
            bytes.max(4),
            limit,
            op,
        )
    }
}
