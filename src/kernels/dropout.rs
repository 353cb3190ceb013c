//! `dropout`: params and bindings of inverted dropout with a counter-based mask; the backward is
//! the same kernel on dy with the same seed.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("dropout", "grid", "hash");

/// `dropout` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "dropout",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/dropout.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub numel: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub x_off: u32,
        pub y_off: u32,
        /// The drop probability.
        pub p: f32,
        /// 1 / (1 − p).
        pub scale: f32,
        pub _pad: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `dropout` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// The masked, scaled copy where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::Dropout,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.numel),
        ),
        On::Cpu => {
            cpu::dropout::dropout(p, &host_read(b.x), &mut host_write(b.y));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::gpu;
    use crate::{Device, Tensor};

    #[test]
    fn keeps_the_expected_fraction_scales_and_regenerates_the_mask_in_backward() {
        let n = 1_000_000;
        let p = 0.3f32;
        let dev = Device::Gpu(gpu());
        let x = Tensor::full(&dev, &[n], 1.0).unwrap().requires_grad();
        let y = x.dropout(p, 1234).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        let yv = y.read_blocking().unwrap();
        let kept = yv.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        // Binomial standard deviation at n = 1e6 is 4.6e-4; allow 5 of them.
        assert!(
            (kept - 0.7).abs() < 5.0 * (0.21f64 / n as f64).sqrt(),
            "kept {kept}"
        );
        assert!(yv.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        // d sum(y) / dx is the mask times the scale: the same elements as the forward.
        let gv = x.grad().unwrap().read_blocking().unwrap();
        assert_eq!(gv, yv, "backward regenerates the forward's mask");
        // Same seed, same mask on the CPU twin; another seed, another mask.
        let cpu = Tensor::full(&Device::Cpu, &[n], 1.0)
            .unwrap()
            .dropout(p, 1234)
            .unwrap()
            .read_blocking()
            .unwrap();
        assert_eq!(cpu, yv, "GPU and CPU draw the same bits");
        let other = x.detach().dropout(p, 99).unwrap().read_blocking().unwrap();
        assert_ne!(other, yv);
    }
}
