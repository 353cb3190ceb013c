//! Element types: `to_dtype` (the `convert` kernel, both ways between f32 and f16) and f16
//! tensors made from binary16 bits, as safetensors and PyTorch's `.half()` hold them.

use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::kernels::convert::{self, F16_COPY, TO_F16, TO_F32};
use crate::kernels::pack8;
use crate::ops::u32_of;
use crate::tensor::dtype::pack;
use crate::tensor::{checked_numel, DType, Tensor};

impl Tensor {
    /// This tensor with elements of `dtype`: a clone when it already has them; else a new
    /// contiguous tensor on the same device, read through the view's strides. f32 → f16 rounds
    /// to nearest even (±∞ past 65504, as PyTorch's `.half()`); f16 → f32 is exact. Not
    /// recorded on the tape: the result is a new leaf (mixed-precision training, which needs
    /// it, is the next step).
    ///
    /// ```
    /// use timeloom::{DType, Device, Tensor};
    /// let x = Tensor::from_slice(&Device::Cpu, &[0.5, -2.0, 3.0e-8], &[3])?;
    /// let back = x.to_dtype(DType::F16)?.to_dtype(DType::F32)?;
    /// assert_eq!(back.read_blocking()?, vec![0.5, -2.0, 5.9604645e-8]); // 2^-24, the nearest f16
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfMemory` or `TooLarge` when the result does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype {
            return Ok(self.clone());
        }
        let mode = match dtype {
            DType::F16 => TO_F16,
            DType::F32 => TO_F32,
        };
        self.convert_into(dtype, mode, "to_dtype")
    }

    /// A contiguous copy of an f16 tensor (any view) starting at element 0 of its own buffer.
    pub(crate) fn f16_copy(&self) -> Result<Tensor> {
        self.convert_into(DType::F16, F16_COPY, "contiguous")
    }

    /// The `convert` kernel from this view (any strides) into a new contiguous `dtype` tensor.
    fn convert_into(&self, dtype: DType, mode: u32, op: &'static str) -> Result<Tensor> {
        let y = self.output_of(&self.shape, dtype, op)?;
        if self.numel() > 0 {
            let p = convert::Params {
                numel: u32_of(self.numel()),
                mode,
                x_off: u32_of(self.offset),
                y_off: 0,
                rank: u32_of(self.rank()),
                contiguous: u32::from(self.is_contiguous()),
                _pad: [0; 2],
                shape: pack8(&self.shape),
                x_strides: pack8(&self.strides),
            };
            convert::launch(&p, &convert::Bindings { x: self, y: &y })?;
        }
        Ok(y)
    }

    /// An f16 tensor holding binary16 `bits` (PyTorch's float16 as safetensors stores it) in
    /// row-major order.
    ///
    /// ```
    /// use timeloom::{DType, Device, Tensor};
    /// let h = Tensor::from_f16_bits(&Device::Cpu, &[0x3c00, 0xc000, 0x7c00], &[3])?;
    /// assert_eq!(h.dtype(), DType::F16);
    /// assert_eq!(h.read_blocking()?, vec![1.0, -2.0, f32::INFINITY]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::from_slice`].
    pub fn from_f16_bits(device: &Device, bits: &[u16], shape: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("Tensor::from_f16_bits", shape)?;
        if numel != bits.len() {
            return Err(Error::ShapeMismatch {
                op: "Tensor::from_f16_bits",
                arg: "shape",
                expected: format!("{} elements, as `bits` holds", bits.len()),
                got: format!("{} ({numel} elements)", shape_str(shape)),
            });
        }
        let words = pack(bits);
        match device {
            Device::Cpu => Ok(Tensor::on_host_of(words, shape, DType::F16)),
            Device::Gpu(gpu) => {
                let t = Tensor::uninit_of(gpu, shape, DType::F16, "Tensor::from_f16_bits", false)?;
                if !words.is_empty() {
                    gpu.inner
                        .upload(t.gpu_raw(), 0, bytemuck::cast_slice(&words), false)?;
                }
                Ok(t)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tensor::dtype::{f16_to_f32, f32_to_f16};
    use crate::testing::gpu;
    use crate::{DType, Device, Error, Tensor};

    /// Values that exercise every branch of the narrowing: ordinary, ties, subnormals, the
    /// edges of the range, signed zeros, infinities and NaN.
    fn awkward(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match i % 13 {
                0 => f32::NAN,
                1 => -0.0,
                2 => f32::INFINITY,
                3 => 65519.0,
                4 => 65520.0,
                5 => 1.0 + 1.0 / 2048.0, // a tie: rounds to 1.0
                6 => 3.0e-8,             // subnormal in f16
                7 => -2.9802322e-8,      // exactly 2^-25: ties to -0
                8 => 1e-10,
                _ => (i as f32 * 0.731).sin() * 10f32.powi((i % 7) as i32 - 3),
            })
            .collect()
    }

    /// f32 → f16 → f32 on both devices, at sizes 0, 1, primes and a large odd one, bit for bit
    /// equal to the host conversion (NaN compared by being NaN).
    #[test]
    fn conversion_is_the_host_rounding_on_both_devices() {
        for n in [0usize, 1, 2, 3, 7, 257, 100_003] {
            let x = awkward(n);
            let want: Vec<f32> = x.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect();
            for dev in [Device::Gpu(gpu()), Device::Cpu] {
                let t = Tensor::from_slice(&dev, &x, &[n]).unwrap();
                let h = t.to_dtype(DType::F16).unwrap();
                assert_eq!(h.dtype(), DType::F16);
                let back = h.to_dtype(DType::F32).unwrap();
                assert_eq!(back.dtype(), DType::F32);
                for (name, got) in [
                    ("read of f16", h.read_blocking().unwrap()),
                    ("widened", back.read_blocking().unwrap()),
                ] {
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                            "{dev} n={n} {name}[{i}]: {g} vs {w} (from {})",
                            x[i]
                        );
                    }
                    assert_eq!(got.len(), n);
                }
            }
        }
    }

    /// Narrow views of an f16 tensor at odd and even offsets widen and read correctly; a
    /// transposed one copies contiguous (f16 to f16) through its strides; f32 views narrow.
    #[test]
    fn f16_views_at_any_offset_read_and_widen() {
        let x: Vec<f32> = (0..12).map(|i| i as f32 - 5.5).collect();
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let h = Tensor::from_slice(&dev, &x, &[12])
                .unwrap()
                .to_dtype(DType::F16)
                .unwrap();
            for (start, len) in [(0, 12), (1, 4), (3, 1), (4, 8), (5, 7)] {
                let v = h.narrow(0, start, len).unwrap();
                let want = &x[start..start + len];
                assert_eq!(v.read_blocking().unwrap(), want, "{dev} read {start}+{len}");
                let w = v.to_dtype(DType::F32).unwrap().read_blocking().unwrap();
                assert_eq!(w, want, "{dev} widened {start}+{len}");
            }
            let both = Tensor::read_all_blocking(&[&h.narrow(0, 3, 2).unwrap(), &h]).unwrap();
            assert_eq!((both[0].as_slice(), both[1].as_slice()), (&x[3..5], &x[..]));
            // A transposed view (odd rows and columns) copies through its strides, as f16 and
            // widened, and reads.
            let t = h.reshape(&[3, 4]).unwrap().t().unwrap();
            let want: Vec<f32> = (0..12).map(|i| x[(i % 3) * 4 + i / 3]).collect();
            let c = t.contiguous().unwrap();
            assert_eq!(c.dtype(), DType::F16);
            assert_eq!(c.read_blocking().unwrap(), want, "{dev} contiguous");
            assert_eq!(t.read_blocking().unwrap(), want, "{dev} read");
            let w = t.to_dtype(DType::F32).unwrap();
            assert_eq!(w.read_blocking().unwrap(), want, "{dev} widened");
            // A strided narrowing of an f32 view: every other element of rows 1..3.
            let f = Tensor::from_slice(&dev, &x, &[3, 4]).unwrap();
            let v = f
                .narrow(0, 1, 2)
                .unwrap()
                .t()
                .unwrap()
                .narrow(0, 1, 3)
                .unwrap();
            let want: Vec<f32> = [5, 9, 6, 10, 7, 11].iter().map(|&i| x[i]).collect();
            let n = v.to_dtype(DType::F16).unwrap();
            assert_eq!(
                n.read_blocking().unwrap(),
                want,
                "{dev} narrowed from a view"
            );
            let o = h
                .narrow(0, 1, 10)
                .unwrap()
                .reshape(&[10])
                .unwrap()
                .owned()
                .unwrap();
            assert_eq!(o.read_blocking().unwrap(), &x[1..11], "{dev} owned");
        }
    }

    /// An f16 parameter that tracks gradients is refused where the tape records (matmul,
    /// layer norm's γ, an embedding table: one gate, `read_only_f16`) and read under no_grad.
    #[test]
    fn f16_parameters_are_read_only() {
        let dev = Device::Cpu;
        let x = Tensor::from_slice(&dev, &[1.0, 2.0, 4.0, 8.0], &[2, 2]).unwrap();
        let h = x.to_dtype(DType::F16).unwrap().requires_grad();
        let v = Tensor::from_slice(&dev, &[1.0, 3.0], &[2])
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap()
            .requires_grad();
        let ids = Tensor::from_slice(&dev, &[1.0, 0.0], &[2]).unwrap();
        type Op = fn(&Tensor, &Tensor, &Tensor, &Tensor) -> crate::Result<Tensor>;
        let ops: [(&str, Op); 3] = [
            ("matmul", |x, h, _, _| x.matmul(h)),
            ("layer_norm", |x, _, v, _| x.layer_norm(Some((v, v)), 1e-5)),
            ("embedding", |_, h, _, ids| crate::embedding(h, ids)),
        ];
        for (name, op) in ops {
            let e = op(&x, &h, &v, &ids).unwrap_err();
            assert!(
                matches!(e, Error::Unsupported { .. }) && e.to_string().contains("no_grad"),
                "{name}: {e}"
            );
            crate::no_grad(|| op(&x, &h, &v, &ids)).unwrap();
        }
    }

    /// Writing into an f16 view that starts or ends mid-word leaves the neighbouring element of
    /// that word as it was, on both devices; moving to the other device keeps the type.
    #[test]
    fn writes_into_f16_views_keep_their_neighbours() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let h = Tensor::from_f16_bits(&dev, &[0x3c00; 9], &[9]).unwrap(); // nine 1.0s
            h.narrow(0, 3, 3).unwrap().write(&[2.0, 3.0, 4.0]).unwrap();
            h.narrow(0, 8, 1).unwrap().write(&[5.0]).unwrap();
            h.narrow(0, 0, 2).unwrap().write(&[0.1, -0.0]).unwrap();
            let want = [
                f16_to_f32(f32_to_f16(0.1)),
                -0.0,
                1.0,
                2.0,
                3.0,
                4.0,
                1.0,
                1.0,
                5.0,
            ];
            let got = h.read_blocking().unwrap();
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{dev}"
            );
            let moved = h.to_device(&Device::Cpu).unwrap();
            assert_eq!(moved.dtype(), DType::F16);
            assert_eq!(moved.read_blocking().unwrap(), got);
        }
    }

    /// An f16 tensor holds half the bytes of its f32 source on the device.
    #[test]
    fn an_f16_tensor_takes_half_the_device_memory() {
        let g = crate::Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let n = 1 << 20;
        let before = g.stats().bytes_resident;
        let x = Tensor::zeros(&dev, &[n]).unwrap();
        let f32_bytes = g.stats().bytes_resident - before;
        let h = x.to_dtype(DType::F16).unwrap();
        let f16_bytes = g.stats().bytes_resident - before - f32_bytes;
        assert_eq!(h.numel(), n);
        assert_eq!((f32_bytes, f16_bytes), (4 * n as u64, 2 * n as u64));
    }

    /// Every op that computes refuses an f16 operand in any position with `Unsupported` naming
    /// the conversion, rather than reading packed halves as f32 (matmul takes them:
    /// kernels/matmul_tests.rs).
    #[test]
    fn ops_refuse_f16_operands() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let a = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
            let h = a.to_dtype(DType::F16).unwrap();
            let ids = Tensor::from_slice(&dev, &[0.0, 1.0], &[2]).unwrap();
            type Op = fn(&Tensor, &Tensor, &Tensor) -> crate::Result<Tensor>;
            let ops: [(&str, Op); 19] = [
                ("add", |h, a, _| h.add(a)),
                ("add (second)", |h, a, _| a.add(h)),
                ("mul (second)", |h, a, _| a.mul(h)),
                ("scale", |h, _, _| h.scale(2.0)),
                ("relu", |h, _, _| h.relu()),
                ("exp", |h, _, _| h.exp()),
                ("square", |h, _, _| h.square()),
                ("sum", |h, _, _| h.sum(0)),
                ("sum_all", |h, _, _| h.sum_all()),
                ("max", |h, _, _| h.max(1)),
                ("softmax", |h, _, _| h.softmax()),
                ("log_softmax", |h, _, _| h.log_softmax()),
                ("expand", |h, _, _| h.reshape(&[1, 4])?.expand(&[3, 4])),
                ("cross-entropy logits", |h, _, ids| {
                    crate::CrossEntropy::new().compute(h, ids)
                }),
                ("mse", |h, a, _| crate::mse_loss(h, a)),
                ("mse (target)", |h, a, _| crate::mse_loss(a, h)),
                // (An f16 table is looked up: kernels::embedding_forward tests it.)
                ("embedding ids", |h, a, _| {
                    crate::embedding(a, &h.reshape(&[4])?)
                }),
                ("layer_norm", |h, _, _| h.layer_norm(None, 1e-5)),
                ("dropout", |h, _, _| h.dropout(0.5, 1)),
            ];
            for (name, op) in ops {
                match op(&h, &a, &ids) {
                    Err(Error::Unsupported { message, .. }) => {
                        assert!(
                            message.contains("to_dtype(DType::F32)"),
                            "{name}: {message}"
                        )
                    }
                    Err(e) => panic!("{dev} {name}: another error: {e}"),
                    Ok(_) => panic!("{dev} {name}: computed on an f16 tensor"),
                }
            }
        }
    }

    /// Safetensors: an f16 tensor saves as an F16 entry (PyTorch's float16) and parses back to
    /// the same values; BF16 entries widen exactly.
    #[test]
    fn f16_tensors_save_as_f16_and_half_files_load() {
        let x = awkward(11);
        let h = Tensor::from_slice(&Device::Cpu, &x, &[11])
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        let bytes = crate::io::serialize(&[("h".into(), h.clone())], None).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor("h").unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F16);
        assert_eq!(view.data().len(), 22);
        let w = crate::io::parse("h", &bytes).unwrap();
        let want = h.read_blocking().unwrap();
        let got = &w.tensors["h"].1;
        for (g, v) in got.iter().zip(&want) {
            assert!(g.to_bits() == v.to_bits() || (g.is_nan() && v.is_nan()));
        }
        // bfloat16: the top half of an f32.
        let bf: Vec<u8> = [1.5f32, -3.25]
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![2], &bf).unwrap();
        let file = safetensors::tensor::serialize([("b", view)], None).unwrap();
        assert_eq!(
            crate::io::parse("b", &file).unwrap().tensors["b"].1,
            [1.5, -3.25]
        );
    }
}
