//! Device: where a tensor lives and where the ops on it run: `Device::Gpu` (the WGSL kernels) or
//! `Device::Cpu` (their CPU twins). Nothing moves between devices unless asked.

use std::fmt;

use crate::gpu::{Gpu, GpuOptions};

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

/// What [`Device::auto`] chose, and why: its `Display` is the one line a program prints.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// The device.
    pub device: Device,
    /// Why it was chosen, as a sentence.
    pub why: String,
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device: {} ({})", self.device, self.why)
    }
}

impl Device {
    /// Opens the best GPU (see [`Gpu::new`]), blocking: software adapters (lavapipe, llvmpipe,
    /// SwiftShader, WARP) included, after every hardware one.
    pub fn gpu() -> crate::Result<Device> {
        Gpu::new_blocking().map(Device::Gpu)
    }

    /// The device a program should run on when its user has not said: a hardware GPU
    /// (discrete, then integrated, then virtual) when wgpu finds one, and otherwise the CPU
    /// path. A software adapter (wgpu's `DeviceType::Cpu`: llvmpipe, lavapipe, SwiftShader,
    /// WARP) is a GPU emulated on the processor and slower than the CPU path, so it is taken
    /// only when asked for: by [`Device::gpu`], or here when `TIMELOOM_BACKEND` or
    /// `TIMELOOM_ADAPTER` is set (then whatever they select, as [`Gpu::new`] does). Never fails:
    /// where the asked-for GPU cannot be opened, the reason says so and the CPU path runs.
    ///
    /// ```
    /// let chosen = timeloom::Device::auto();
    /// eprintln!("{chosen}"); // e.g. "device: cpu (no hardware GPU adapter: ...)"
    /// let x = timeloom::Tensor::from_slice(&chosen.device, &[1.0, 2.0], &[2])?;
    /// assert_eq!(x.sum_all()?.read_blocking()?, vec![3.0]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn auto() -> Chosen {
        let asked: Vec<String> = ["TIMELOOM_BACKEND", "TIMELOOM_ADAPTER"]
            .into_iter()
            .filter_map(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={v}"))
            })
            .collect();
        if !asked.is_empty() {
            let asked = asked.join(", ");
            return match Gpu::new_blocking() {
                Ok(g) => Chosen {
                    why: format!("{}, asked for by {asked}", g.adapter()),
                    device: Device::Gpu(g),
                },
                Err(e) => Chosen {
                    device: Device::Cpu,
                    why: format!(
                        "{asked} asked for a GPU that could not be opened: {}",
                        e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                },
            };
        }
        let options = GpuOptions {
            software: Some(false),
            ..GpuOptions::default()
        };
        // One line whatever the message's own layout.
        let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        match pollster::block_on(Gpu::with_options(options)) {
            Ok(g) => Chosen {
                why: format!("{}: the best hardware adapter", g.adapter()),
                device: Device::Gpu(g),
            },
            // A hardware adapter was there but its device did not open.
            Err(crate::Error::NoAdapter { message }) if message.contains("could not open") => {
                Chosen {
                    device: Device::Cpu,
                    why: format!("a hardware GPU could not be opened: {}", flat(&message)),
                }
            }
            Err(crate::Error::NoAdapter { message }) => Chosen {
                device: Device::Cpu,
                why: format!(
                    "no hardware GPU: {}; a software adapter is slower than the CPU path and \
                     runs only when asked for (Device::gpu, TIMELOOM_BACKEND, TIMELOOM_ADAPTER)",
                    flat(&message)
                ),
            },
            Err(e) => Chosen {
                device: Device::Cpu,
                why: format!(
                    "the hardware GPU could not be opened: {}",
                    flat(&e.to_string())
                ),
            },
        }
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

#[cfg(test)]
mod tests {
    use super::Device;

    /// Without TIMELOOM_BACKEND or TIMELOOM_ADAPTER, `auto` takes a hardware GPU or the CPU
    /// path, never a software adapter (CI's lavapipe), and says why in one line.
    #[test]
    fn auto_takes_a_hardware_gpu_or_the_cpu_path_and_says_why() {
        let asked = ["TIMELOOM_BACKEND", "TIMELOOM_ADAPTER"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
        let chosen = Device::auto();
        let line = chosen.to_string();
        assert!(
            line.starts_with("device: ") && !line.contains('\n'),
            "{line}"
        );
        assert!(chosen.why.len() > 10, "{line}");
        if let (Device::Gpu(g), false) = (&chosen.device, asked) {
            assert_ne!(g.adapter().device_type, "Cpu", "{line}");
        }
    }

    /// `software: Some(false)` never opens a software adapter; when software ones are all
    /// there is (CI's lavapipe) it says so, and the default options still take one.
    #[test]
    fn hardware_only_options_skip_software_adapters() {
        use crate::gpu::{Gpu, GpuOptions};
        use crate::Error;
        if ["TIMELOOM_BACKEND", "TIMELOOM_ADAPTER"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
        {
            return; // the environment narrows the search; this test is about the default
        }
        let options = GpuOptions {
            software: Some(false),
            ..GpuOptions::default()
        };
        match pollster::block_on(Gpu::with_options(options)) {
            Ok(g) => assert_ne!(g.adapter().device_type, "Cpu"),
            Err(Error::NoAdapter { message }) if message.contains("only software") => {
                let any = Gpu::new_blocking().expect("the software adapter it found");
                assert_eq!(any.adapter().device_type, "Cpu");
            }
            Err(e) => assert!(e.to_string().contains("no adapter"), "{e}"),
        }
    }
}
