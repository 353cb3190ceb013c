//! Tensor: an f32 array with a shape and a strided view (offset, strides) into storage that lives
//! on one device: a pooled GPU buffer or (pooled, when large) host memory. Views (reshape of a contiguous tensor,
//! transpose, permute, narrow) share storage; `contiguous` copies only when it must.

use std::sync::Arc;

use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::gpu::pool::RawBuffer;
use crate::gpu::Gpu;
pub use dtype::DType;
use host::HostStorage;

pub(crate) mod autodiff;
pub(crate) mod dtype;
mod host;
mod transfer;
mod view;

/// Most dimensions a tensor may have (the kernels pack shapes into 8 slots).
pub const MAX_RANK: usize = 8;

/// Device storage of a tensor; returned to the pool when the last view drops.
pub(crate) struct GpuStorage {
    pub gpu: Gpu,
    raw: Option<RawBuffer>,
    /// A buffer the application owns (`Tensor::from_wgpu_buffer`): never returned to the pool.
    external: bool,
}

impl GpuStorage {
    pub fn raw(&self) -> &RawBuffer {
        self.raw.as_ref().expect("present until drop")
    }
}

impl Drop for GpuStorage {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            if self.external {
                self.gpu.inner.release_external(&raw.buffer);
            } else {
                self.gpu.inner.retire(raw);
            }
        }
    }
}

#[derive(Clone)]
pub(crate) enum Storage {
    Gpu(Arc<GpuStorage>),
    Cpu(Arc<HostStorage>),
}

/// An f32 tensor on a [`Device`]. Cloning is cheap: clones share storage.
///
/// Ops validate shapes on the host and then record a GPU dispatch (or run the CPU twin); nothing
/// waits for the GPU until a value is read.
///
/// ```
/// use timeloom::{Device, Tensor};
/// let a = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = a.t()?.matmul(&a)?; // aᵀ·a, the transpose is a view
/// assert_eq!(b.read_blocking()?, vec![10.0, 14.0, 14.0, 20.0]);
/// # Ok::<(), timeloom::Error>(())
/// ```
///
/// # Shapes
/// Up to [`MAX_RANK`] dimensions and 2³² − 1 elements; a rank-0 tensor holds one value.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) storage: Storage,
    pub(crate) shape: Vec<usize>,
    pub(crate) strides: Vec<usize>,
    pub(crate) offset: usize,
    /// The element type; `offset` and `strides` count elements of it.
    pub(crate) dtype: DType,
    /// How this tensor takes part in autodiff: a parameter, an op's output, or neither.
    pub(crate) autograd: Option<crate::tensor::autodiff::Autograd>,
}

/// Row-major strides of `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// The element count of `shape`, checked against what the kernels can index.
pub(crate) fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.len() > MAX_RANK {
        return Err(Error::Unsupported {
            op,
            message: format!(
                "shape {} has {} dimensions; timeloom supports up to {MAX_RANK}: reshape first",
                shape_str(shape),
                shape.len()
            ),
        });
    }
    // The product of the non-zero dimensions bounds every stride, so an empty tensor such as
    // [0, 2^32, 2^32] cannot overflow its strides either.
    let numel = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= u32::MAX as usize)
        .map(|n| if shape.contains(&0) { 0 } else { n })
        .ok_or_else(|| Error::TooLarge {
            op,
            what: format!("tensor {}", shape_str(shape)),
            bytes: shape.iter().fold(4u64, |a, &d| a.saturating_mul(d as u64)),
            limit: u64::from(u32::MAX) * 4,
            limit_name: "2^32 elements per tensor",
        })?;
    Ok(numel)
}

mod sealed {
    /// Only the primitive integers are ids.
    pub trait Sealed {}
}

/// A host integer that [`Tensor::from_ids`] takes as an id, a class target or a length: every
/// primitive integer type (sealed: floats are not ids).
pub trait Id: Copy + sealed::Sealed {
    /// The value, widened (exact for every value `from_ids` accepts).
    fn widen(self) -> f64;
}

macro_rules! id_impl {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Id for $t {
            fn widen(self) -> f64 {
                self as f64
            }
        }
    )*};
}
id_impl!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Tensor {
    /// A tensor of integer ids, class targets or sequence lengths (what `Embedding`,
    /// `CrossEntropy` and recurrent lengths take) from host integers of any width: `&[u32]`,
    /// `&[usize]`, PyTorch's int64 as `&[i64]`. They are held as f32, which is exact up to 2²⁴.
    ///
    /// ```
    /// use timeloom::{Device, Tensor};
    /// let ids = Tensor::from_ids(&Device::Cpu, &[3usize, 0, 7], &[3])?;
    /// assert_eq!(ids.read_blocking()?, vec![3.0, 0.0, 7.0]);
    /// assert!(Tensor::from_ids(&Device::Cpu, &[-1i64], &[1]).is_err());
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` naming the first negative id, or the first past 2²⁴ (which f32 would
    /// round to another id); otherwise as [`Tensor::from_slice`].
    pub fn from_ids<T: Id>(device: &Device, ids: &[T], shape: &[usize]) -> Result<Tensor> {
        const EXACT: f64 = 16_777_216.0;
        if let Some((i, v)) = ids
            .iter()
            .map(|&v| v.widen())
            .enumerate()
            .find(|&(_, v)| !(0.0..=EXACT).contains(&v))
        {
            return Err(Error::InvalidArgument {
                op: "Tensor::from_ids",
                message: format!(
                    "id {v} at position {i} is {}: ids, targets and lengths are counts from 0 to 2^24 (16,777,216), which f32 holds exactly",
                    if v < 0.0 { "negative" } else { "past 2^24" }
                ),
            });
        }
        let values: Vec<f32> = ids.iter().map(|&v| v.widen() as f32).collect();
        Tensor::from_slice(device, &values, shape)
    }

    /// A tensor holding `data` in row-major order.
    ///
    /// # Errors
    /// `ShapeMismatch` when `data.len()` is not the product of `shape`; `TooLarge` past a device
    /// limit.
    pub fn from_slice(device: &Device, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("Tensor::from_slice", shape)?;
        if numel != data.len() {
            return Err(Error::ShapeMismatch {
                op: "Tensor::from_slice",
                arg: "shape",
                expected: format!("{} elements, as `data` holds", data.len()),
                got: format!("{} ({numel} elements)", shape_str(shape)),
            });
        }
        match device {
            Device::Cpu => Ok(Tensor::on_host(host::copied(data), shape)),
            Device::Gpu(gpu) => {
                let t = Tensor::uninit(gpu, shape, "Tensor::from_slice", false)?;
                t.gpu_storage().expect("a GPU tensor").gpu.inner.upload(
                    t.raw().expect("a GPU tensor"),
                    0,
                    bytemuck::cast_slice(data),
                    false,
                )?;
                Ok(t)
            }
        }
    }

    /// A tensor of zeros.
    pub fn zeros(device: &Device, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 0.0)
    }

    /// A tensor with every element `value`.
    pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
        let numel = checked_numel("Tensor::full", shape)?;
        match device {
            Device::Cpu => Ok(Tensor::on_host(host::filled(numel, value), shape)),
            Device::Gpu(gpu) => {
                let t = Tensor::uninit(gpu, shape, "Tensor::full", true)?;
                t.fill(value)?;
                Ok(t)
            }
        }
    }

    pub(crate) fn on_host(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::on_host_of(data, shape, DType::F32)
    }

    /// A contiguous host tensor of `dtype` over `words` (f16: two elements a word, by bits).
    pub(crate) fn on_host_of(words: Vec<f32>, shape: &[usize], dtype: DType) -> Tensor {
        Tensor {
            storage: Storage::Cpu(Arc::new(HostStorage::new(words))),
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
            dtype,
            autograd: None,
        }
    }

    /// A contiguous tensor whose contents are whatever the pool's buffer held: every caller
    /// overwrites all of it. `by_kernel`: a kernel writes it (so a buffer released earlier in
    /// this batch will do); else an upload does.
    pub(crate) fn uninit(
        gpu: &Gpu,
        shape: &[usize],
        op: &'static str,
        by_kernel: bool,
    ) -> Result<Tensor> {
        Tensor::uninit_of(gpu, shape, DType::F32, op, by_kernel)
    }

    /// [`Tensor::uninit`] of element type `dtype`.
    pub(crate) fn uninit_of(
        gpu: &Gpu,
        shape: &[usize],
        dtype: DType,
        op: &'static str,
        by_kernel: bool,
    ) -> Result<Tensor> {
        let numel = checked_numel(op, shape)?;
        let bytes = dtype.words(numel) as u64 * 4;
        let what = format!("{dtype} tensor {}", shape_str(shape));
        let raw = if by_kernel {
            gpu.inner.acquire_output(bytes, op, &what)?
        } else {
            gpu.inner.acquire(bytes, op, &what)?
        };
        Ok(Tensor {
            storage: Storage::Gpu(Arc::new(GpuStorage {
                gpu: gpu.clone(),
                raw: Some(raw),
                external: false,
            })),
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
            dtype,
            autograd: None,
        })
    }

    /// A fresh contiguous output of `shape` on this tensor's device, whose contents are
    /// unspecified on both (the GPU's buffer pool, the host's: `host::for_output`): every
    /// caller's kernel or twin writes all of it.
    pub(crate) fn output_like(&self, shape: &[usize], op: &'static str) -> Result<Tensor> {
        self.expect_f32(op)?;
        match &self.storage {
            Storage::Gpu(s) => Tensor::uninit(&s.gpu, shape, op, true),
            Storage::Cpu(_) => Ok(Tensor::on_host(
                host::for_output(checked_numel(op, shape)?),
                shape,
            )),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// `Err(Unsupported)` naming `op` unless this tensor holds f32: the kernels f16 tensors
    /// reach so far are conversion and transfer.
    pub(crate) fn expect_f32(&self, op: &'static str) -> Result<()> {
        if self.dtype == DType::F32 {
            return Ok(());
        }
        Err(Error::Unsupported {
            op,
            message: format!(
                "takes f32 tensors; this one is {}: convert it with .to_dtype(DType::F32) first (f16 storage is read, written, converted and saved; kernels computing on it are to come)",
                self.dtype
            ),
        })
    }

    /// A fresh contiguous output of `shape` and `dtype` on this tensor's device, contents
    /// unspecified (its writer fills all of it); for the ops that change the element type.
    pub(crate) fn output_of(
        &self,
        shape: &[usize],
        dtype: DType,
        op: &'static str,
    ) -> Result<Tensor> {
        match &self.storage {
            Storage::Gpu(s) => Tensor::uninit_of(&s.gpu, shape, dtype, op, true),
            Storage::Cpu(_) => {
                let words = dtype.words(checked_numel(op, shape)?);
                Ok(Tensor::on_host_of(host::for_output(words), shape, dtype))
            }
        }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Element strides of the view (0 on a broadcast axis).
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// The device the tensor lives on.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Gpu(s) => Device::Gpu(s.gpu.clone()),
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// Whether the view is row-major without gaps (a copy would not change the layout).
    pub fn is_contiguous(&self) -> bool {
        self.shape
            .iter()
            .zip(&self.strides)
            .zip(contiguous_strides(&self.shape))
            .all(|((&n, &s), c)| n == 1 || s == c)
    }

    pub(crate) fn gpu_storage(&self) -> Option<&GpuStorage> {
        match &self.storage {
            Storage::Gpu(s) => Some(s),
            Storage::Cpu(_) => None,
        }
    }

    /// The device buffer of a tensor the caller knows is on a GPU (checked by `same_device`).
    pub(crate) fn gpu_raw(&self) -> &RawBuffer {
        self.raw()
            .expect("a GPU tensor: the op checked that its operands share the device")
    }

    pub(crate) fn raw(&self) -> Option<&RawBuffer> {
        self.gpu_storage().map(GpuStorage::raw)
    }

    /// Whether `self` and `other` view the same storage.
    pub(crate) fn shares_storage(&self, other: &Tensor) -> bool {
        match (&self.storage, &other.storage) {
            // Two wraps of one application buffer share its id.
            (Storage::Gpu(a), Storage::Gpu(b)) => Arc::ptr_eq(a, b) || a.raw().id == b.raw().id,
            (Storage::Cpu(a), Storage::Cpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dtype {
            DType::F32 => write!(f, "Tensor({} on {})", shape_str(&self.shape), self.device()),
            d => write!(
                f,
                "Tensor({} {d} on {})",
                shape_str(&self.shape),
                self.device()
            ),
        }
    }
}

/// `Err(DeviceMismatch)` unless `other` lives on `first`'s device; `Err(Unsupported)` unless
/// both hold f32 (ops that take f16 operands check with [`same_device_any_dtype`]).
pub(crate) fn same_device(
    op: &'static str,
    arg: &'static str,
    first: &Tensor,
    other: &Tensor,
) -> Result<()> {
    first.expect_f32(op)?;
    other.expect_f32(op)?;
    same_device_any_dtype(op, arg, first, other)
}

/// `Err(DeviceMismatch)` unless `other` lives on `first`'s device, whatever their dtypes.
pub(crate) fn same_device_any_dtype(
    op: &'static str,
    arg: &'static str,
    first: &Tensor,
    other: &Tensor,
) -> Result<()> {
    let (a, b) = (first.device(), other.device());
    if a.same(&b) {
        Ok(())
    } else {
        Err(Error::DeviceMismatch {
            op,
            arg,
            expected: a.to_string(),
            got: b.to_string(),
        })
    }
}

/// `Err(Unsupported)` for an f16 operand that tracks gradients while the tape records: f16
/// tensors are read (inference, a frozen copy), never trained, so far. Every op that takes an
/// f16 operand which could be a parameter checks it here.
pub(crate) fn read_only_f16(op: &'static str, arg: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype == DType::F16 && t.tracks_grad() && crate::is_grad_enabled() {
        return Err(Error::Unsupported {
            op,
            message: format!("an f16 {arg} that tracks gradients: f16 tensors are read, not trained, so far; keep trained weights in f32, or run inference under no_grad (or detach the f16 copy)"),
        });
    }
    Ok(())
}

/// Held-lock access to host storage for the CPU path of ops.
pub(crate) fn host_read(t: &Tensor) -> std::sync::RwLockReadGuard<'_, Vec<f32>> {
    match &t.storage {
        Storage::Cpu(v) => v.read(),
        Storage::Gpu(_) => unreachable!("host_read on a GPU tensor: ops check devices first"),
    }
}

/// Held-lock write access to host storage for the CPU path of in-place ops.
pub(crate) fn host_write(t: &Tensor) -> std::sync::RwLockWriteGuard<'_, Vec<f32>> {
    match &t.storage {
        Storage::Cpu(v) => v.write(),
        Storage::Gpu(_) => unreachable!("host_write on a GPU tensor: ops check devices first"),
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Tensor>();
    is::<Gpu>();
}

#[cfg(test)]
mod tests {
    use super::Tensor;
    use crate::{Device, Error};

    /// Ids of every integer width up to 2²⁴ arrive exactly; a negative one and one past 2²⁴
    /// are refused with their position, as is a shape that does not hold them.
    #[test]
    fn ids_from_host_integers_are_exact_and_checked() {
        let dev = Device::Cpu;
        let top = 16_777_216usize;
        for t in [
            Tensor::from_ids(&dev, &[0usize, 5, top], &[3]),
            Tensor::from_ids(&dev, &[0u32, 5, top as u32], &[3]),
            Tensor::from_ids(&dev, &[0i64, 5, top as i64], &[3]),
        ] {
            assert_eq!(
                t.unwrap().read_blocking().unwrap(),
                [0.0, 5.0, 16_777_216.0]
            );
        }
        for (e, says) in [
            (
                Tensor::from_ids(&dev, &[1i64, -2], &[2]),
                "id -2 at position 1 is negative",
            ),
            (
                Tensor::from_ids(&dev, &[top as u64 + 1], &[1]),
                "id 16777217 at position 0 is past 2^24",
            ),
        ] {
            match e {
                Err(Error::InvalidArgument { message, .. }) => {
                    assert!(message.contains(says), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            Tensor::from_ids(&dev, &[1u8, 2], &[3]),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
