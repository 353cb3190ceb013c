//! Tensor: an f32 array with a shape and a strided view (offset, strides) into storage that lives
//! on one device: a pooled GPU buffer or host memory. Views (reshape of a contiguous tensor,
//! transpose, permute, narrow) share storage; `contiguous` copies only when it must.

use std::sync::{Arc, RwLock};

use crate::autodiff::record;
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::gpu::pool::RawBuffer;
use crate::gpu::Gpu;

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
    Cpu(Arc<RwLock<Vec<f32>>>),
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
    /// How this tensor takes part in autodiff: a parameter, an op's output, or neither.
    pub(crate) autograd: Option<crate::autodiff::Autograd>,
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

impl Tensor {
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
            Device::Cpu => Ok(Tensor::on_host(data.to_vec(), shape)),
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
            Device::Cpu => Ok(Tensor::on_host(vec![value; numel], shape)),
            Device::Gpu(gpu) => {
                let t = Tensor::uninit(gpu, shape, "Tensor::full", true)?;
                t.fill(value)?;
                Ok(t)
            }
        }
    }

    pub(crate) fn on_host(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor {
            storage: Storage::Cpu(Arc::new(RwLock::new(data))),
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
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
        let numel = checked_numel(op, shape)?;
        let (bytes, what) = (numel as u64 * 4, format!("tensor {}", shape_str(shape)));
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
            autograd: None,
        })
    }

    /// A fresh contiguous output of `shape` on this tensor's device: uninitialised on the GPU,
    /// zeros on the host.
    pub(crate) fn output_like(&self, shape: &[usize], op: &'static str) -> Result<Tensor> {
        match &self.storage {
            Storage::Gpu(s) => Tensor::uninit(&s.gpu, shape, op, true),
            Storage::Cpu(_) => Ok(Tensor::on_host(vec![0.0; checked_numel(op, shape)?], shape)),
        }
    }

    /// Wraps `buffer`, which the application owns, as a contiguous tensor of `shape` starting
    /// `offset` bytes in: no copy. Ops then read (and, for in-place ops, write) the
    /// application's memory directly.
    ///
    /// Rules: the buffer must come from `gpu`'s device and have `STORAGE | COPY_SRC | COPY_DST`
    /// usage (`COPY_DST` for [`Tensor::write`]); `offset` is a multiple of 4; the whole buffer
    /// must fit the device's `max_storage_buffer_binding_size`. timeloom keeps a reference
    /// (wgpu buffers are reference-counted), so the buffer lives at least as long as the tensor,
    /// and never returns it to its pool. Work timeloom records reads the buffer when it is
    /// *submitted*: do not write it from your own passes between recording an op on it and the
    /// next [`Gpu::flush`] (or readback), or the op sees your new values.
    ///
    /// # Errors
    /// `InvalidArgument` for a missing usage flag or a misaligned offset; `ShapeMismatch` when
    /// the shape does not fit in the buffer; `TooLarge` past the binding limit.
    pub fn from_wgpu_buffer(
        gpu: &Gpu,
        buffer: &wgpu::Buffer,
        offset: u64,
        shape: &[usize],
    ) -> Result<Tensor> {
        let op = "Tensor::from_wgpu_buffer";
        let numel = checked_numel(op, shape)?;
        let need = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        if !buffer.usage().contains(need) {
            return Err(Error::InvalidArgument {
                op,
                message: format!("the buffer's usage is {:?}; it needs STORAGE | COPY_SRC (and COPY_DST to be written)", buffer.usage()),
            });
        }
        if buffer.size() == 0 || !buffer.size().is_multiple_of(4) {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "the buffer is {} bytes; a storage binding needs a nonzero multiple of 4",
                    buffer.size()
                ),
            });
        }
        if !offset.is_multiple_of(4) {
            return Err(Error::InvalidArgument {
                op,
                message: format!("offset {offset} is not a multiple of 4 bytes"),
            });
        }
        let bytes = numel as u64 * 4;
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > buffer.size())
        {
            return Err(Error::ShapeMismatch {
                op,
                arg: "shape",
                expected: format!(
                    "at most {} f32 elements after byte {offset} of a {}-byte buffer",
                    buffer.size().saturating_sub(offset) / 4,
                    buffer.size()
                ),
                got: format!("{} ({numel} elements)", shape_str(shape)),
            });
        }
        // Kernels index elements with u32 from the start of the buffer.
        if (offset + bytes) / 4 > u64::from(u32::MAX) {
            return Err(Error::TooLarge {
                op,
                what: format!(
                    "elements up to byte {} of the application's buffer",
                    offset + bytes
                ),
                bytes: offset + bytes,
                limit: u64::from(u32::MAX) * 4,
                limit_name: "2^32 elements from the buffer's start (u32 indices)",
            });
        }
        let limit = gpu.limits().max_storage_buffer_binding_size;
        if buffer.size() > limit {
            return Err(Error::TooLarge {
                op,
                what: "the application's buffer (timeloom binds buffers whole)".into(),
                bytes: buffer.size(),
                limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        let raw = RawBuffer {
            buffer: buffer.clone(),
            id: gpu.inner.adopt_external(buffer),
            class: buffer.size(),
            kind: crate::gpu::pool::BufferKind::Storage,
        };
        Ok(Tensor {
            storage: Storage::Gpu(Arc::new(GpuStorage {
                gpu: gpu.clone(),
                raw: Some(raw),
                external: true,
            })),
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: (offset / 4) as usize,
            autograd: None,
        })
    }

    /// The device buffer holding this tensor, with the byte offset and byte size of its elements,
    /// for binding in the application's own pipelines: no copy. `None` on the CPU or for a
    /// non-contiguous view (call [`Tensor::contiguous`] first). Call [`Gpu::flush`] before the
    /// application submits work that reads it, so timeloom's writes come first in the queue.
    ///
    /// The buffer holds this tensor's values only while the tensor (or a clone of it) lives:
    /// once the last one drops, the engine's pool may hand the buffer to the next op's output.
    /// Keep the tensor alive as long as the application reads the buffer.
    pub fn wgpu_buffer(&self) -> Option<(wgpu::Buffer, u64, u64)> {
        if !self.is_contiguous() {
            return None;
        }
        let raw = self.raw()?;
        Some((
            raw.buffer.clone(),
            self.offset as u64 * 4,
            self.numel() as u64 * 4,
        ))
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

    fn view(&self, shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            shape,
            strides,
            offset,
            autograd: None,
        }
    }

    /// The same elements with another shape: a view when contiguous, else a copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("reshape", shape)?;
        if numel != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                arg: "shape",
                expected: format!(
                    "{} elements, as {} has",
                    self.numel(),
                    shape_str(&self.shape)
                ),
                got: format!("{} ({numel} elements)", shape_str(shape)),
            });
        }
        let base = if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous()?
        };
        let out = base.view(shape.to_vec(), contiguous_strides(shape), base.offset);
        let from = self.shape.clone();
        Ok(record(out, "reshape", &[self], move |g, dy| {
            g.add(0, dy.reshape(&from)?)
        }))
    }

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis >= self.rank() {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "axis {axis} is out of range for a tensor of shape {}",
                    shape_str(&self.shape)
                ),
            });
        }
        Ok(())
    }

    /// Swaps two axes (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let (mut shape, mut strides) = (self.shape.clone(), self.strides.clone());
        shape.swap(a, b);
        strides.swap(a, b);
        let out = self.view(shape, strides, self.offset);
        Ok(record(out, "transpose", &[self], move |g, dy| {
            g.add(0, dy.transpose(a, b)?)
        }))
    }

    /// The transpose of a matrix (a view).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::ShapeMismatch {
                op: "t",
                arg: "self",
                expected: "a matrix [rows, columns]; use `transpose(a, b)` for other ranks".into(),
                got: shape_str(&self.shape),
            });
        }
        self.transpose(0, 1)
    }

    /// Reorders the axes: axis `i` of the result is axis `order[i]` of `self` (a view).
    pub fn permute(&self, order: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        if order.len() != self.rank()
            || order
                .iter()
                .any(|&a| a >= self.rank() || std::mem::replace(&mut seen[a], true))
        {
            return Err(Error::InvalidArgument {
                op: "permute",
                message: format!(
                    "{order:?} is not a permutation of the {} axes of {}",
                    self.rank(),
                    shape_str(&self.shape)
                ),
            });
        }
        let shape = order.iter().map(|&a| self.shape[a]).collect();
        let strides = order.iter().map(|&a| self.strides[a]).collect();
        let out = self.view(shape, strides, self.offset);
        let mut inverse = vec![0; order.len()];
        for (i, &a) in order.iter().enumerate() {
            inverse[a] = i;
        }
        Ok(record(out, "permute", &[self], move |g, dy| {
            g.add(0, dy.permute(&inverse)?)
        }))
    }

    /// Elements `start..start + len` along `axis` (a view), differentiable along any axis.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        self.check_axis("narrow", axis)?;
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.shape[axis])
        {
            return Err(Error::InvalidArgument {
                op: "narrow",
                message: format!(
                    "{start}..{} is outside axis {axis} of length {}",
                    start.saturating_add(len),
                    self.shape[axis]
                ),
            });
        }
        let mut shape = self.shape.clone();
        shape[axis] = len;
        let out = self.view(
            shape,
            self.strides.clone(),
            self.offset + start * self.strides[axis],
        );
        let full = self.shape.clone();
        Ok(record(out, "narrow", &[self], move |g, dy| {
            // dy written into zeros of the input's shape. When only unit axes precede `axis`
            // the slice is one contiguous range of that zero tensor (the common case: the
            // recurrent layers' packed outputs, rows of a batch).
            if full[..axis].iter().all(|&n| n == 1) {
                let dx = Tensor::zeros(&dy.device(), &full)?;
                let inner: usize = full[axis + 1..].iter().product();
                dx.reshape(&[dx.numel()])?
                    .narrow(0, start * inner, len * inner)?
                    .axpy_from(dy, 1.0, 0.0)?;
                return g.add(0, dx);
            }
            // Otherwise with `axis` moved to the front the slice is such a range; the gradient
            // goes back as a view in the input's order.
            let rank = full.len();
            let order: Vec<usize> = std::iter::once(axis)
                .chain((0..rank).filter(|&d| d != axis))
                .collect();
            let front: Vec<usize> = order.iter().map(|&d| full[d]).collect();
            let dx = Tensor::zeros(&dy.device(), &front)?;
            let inner: usize = front[1..].iter().product();
            dx.reshape(&[dx.numel()])?
                .narrow(0, start * inner, len * inner)?
                .axpy_from(&dy.permute(&order)?, 1.0, 0.0)?;
            let mut inverse = vec![0; rank];
            for (i, &a) in order.iter().enumerate() {
                inverse[a] = i;
            }
            g.add(0, dx.permute(&inverse)?)
        }))
    }

    /// A view of this tensor broadcast to `shape` (stride 0 on stretched axes). Internal: the
    /// result aliases elements, so it is only ever read.
    pub(crate) fn broadcast_strides(&self, shape: &[usize]) -> Vec<usize> {
        let lead = shape.len() - self.rank();
        (0..shape.len())
            .map(|d| {
                if d < lead || self.shape[d - lead] == 1 && shape[d] != 1 {
                    0
                } else {
                    self.strides[d - lead]
                }
            })
            .collect()
    }

    /// A contiguous, detached tensor that starts at element 0 of its buffer (copied when this one
    /// does not): for kernels that bind a whole buffer and read from its start.
    pub(crate) fn owned(&self) -> Result<Tensor> {
        let t = self.contiguous()?.detach();
        if t.offset == 0 {
            Ok(t)
        } else {
            t.affine(1.0, 0.0)
        }
    }

    /// A contiguous tensor with the same elements: `self` when already contiguous.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.unary_op(crate::kernels::unary::UnaryOp::Identity, 1.0, 0.0)
    }

    /// The elements in row-major order. On a device timeloom owns this waits for the device; on
    /// a host application's device it completes when the application polls.
    pub async fn read(&self) -> Result<Vec<f32>> {
        self.read_inner(false).await
    }

    /// [`Tensor::read`], blocking the calling thread until the device has finished.
    pub fn read_blocking(&self) -> Result<Vec<f32>> {
        pollster::block_on(self.read_inner(true))
    }

    async fn read_inner(&self, block: bool) -> Result<Vec<f32>> {
        let t = self.contiguous()?;
        match &t.storage {
            Storage::Cpu(data) => {
                let data = data
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(data[t.offset..t.offset + t.numel()].to_vec())
            }
            Storage::Gpu(s) => {
                let bytes = s
                    .gpu
                    .inner
                    .read_bytes(s.raw(), t.offset as u64 * 4, t.numel() as u64 * 4, block)
                    .await?;
                Ok(bytemuck::pod_collect_to_vec(&bytes))
            }
        }
    }

    /// The elements of several tensors, in the order given, with one submission and one wait
    /// per GPU device instead of one of each per tensor (as separate reads cost): for logging
    /// several metrics, or saving a checkpoint. On a host application's device it completes
    /// when the application polls.
    ///
    /// ```
    /// use timeloom::{Device, Tensor};
    /// let dev = Device::Cpu; // or Device::gpu()?: one submission, one wait
    /// let a = Tensor::full(&dev, &[2], 1.5)?;
    /// let b = a.scale(2.0)?;
    /// let both = pollster::block_on(Tensor::read_all(&[&a, &b]))?;
    /// assert_eq!(both, [vec![1.5, 1.5], vec![3.0, 3.0]]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub async fn read_all(tensors: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        Tensor::read_all_inner(tensors, false).await
    }

    /// [`Tensor::read_all`], blocking the calling thread until the devices have finished.
    pub fn read_all_blocking(tensors: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(Tensor::read_all_inner(tensors, true))
    }

    async fn read_all_inner(tensors: &[&Tensor], block: bool) -> Result<Vec<Vec<f32>>> {
        // Views are made contiguous first (recorded into the same batch as the copies).
        let views: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.contiguous())
            .collect::<Result<_>>()?;
        let mut out: Vec<Option<Vec<f32>>> = vec![None; views.len()];
        for i in 0..views.len() {
            if out[i].is_some() {
                continue;
            }
            let Storage::Gpu(first) = &views[i].storage else {
                out[i] = Some(views[i].read_inner(block).await?);
                continue;
            };
            // Every tensor still unread on this one's device, read together.
            let group: Vec<usize> = (i..views.len())
                .filter(|&j| {
                    out[j].is_none()
                        && matches!(&views[j].storage,
                            Storage::Gpu(s) if Arc::ptr_eq(&s.gpu.inner, &first.gpu.inner))
                })
                .collect();
            let ranges: Vec<(&RawBuffer, u64, u64)> = group
                .iter()
                .map(|&j| {
                    let t = &views[j];
                    let raw = t.raw().expect("a GPU tensor");
                    (raw, t.offset as u64 * 4, t.numel() as u64 * 4)
                })
                .collect();
            let bytes = first.gpu.inner.read_many_bytes(&ranges, block).await?;
            for (&j, b) in group.iter().zip(bytes) {
                out[j] = Some(bytemuck::pod_collect_to_vec(&b));
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every tensor read"))
            .collect())
    }

    /// Overwrites the elements in row-major order. The tensor must be contiguous; clones share
    /// storage, so they see the new values too. On the GPU, work recorded before is submitted
    /// first so that it still sees the old values.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "Tensor::write",
                arg: "data",
                expected: format!("{} elements for {}", self.numel(), shape_str(&self.shape)),
                got: format!("{} elements", data.len()),
            });
        }
        if !self.is_contiguous() {
            return Err(Error::InvalidArgument {
                op: "Tensor::write",
                message: "the tensor is a non-contiguous view; write into a contiguous tensor"
                    .into(),
            });
        }
        match &self.storage {
            Storage::Cpu(v) => {
                let mut v = v.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                v[self.offset..self.offset + data.len()].copy_from_slice(data);
                Ok(())
            }
            Storage::Gpu(s) => {
                if !s
                    .raw()
                    .buffer
                    .usage()
                    .contains(wgpu::BufferUsages::COPY_DST)
                {
                    return Err(Error::InvalidArgument {
                        op: "Tensor::write",
                        message: "the application's buffer lacks COPY_DST usage; write it with your own queue.write_buffer".into(),
                    });
                }
                s.gpu.inner.upload(
                    s.raw(),
                    self.offset as u64 * 4,
                    bytemuck::cast_slice(data),
                    true,
                )
            }
        }
    }

    /// A copy on `device` (a clone when it is already there). Moving off a GPU reads it back,
    /// which waits for the device.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device().same(device) {
            return Ok(self.clone());
        }
        let data = self.read_blocking()?;
        Tensor::from_slice(device, &data, &self.shape)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({} on {})", shape_str(&self.shape), self.device())
    }
}

/// Held-lock access to host storage for the CPU path of ops.
pub(crate) fn host_read(t: &Tensor) -> std::sync::RwLockReadGuard<'_, Vec<f32>> {
    match &t.storage {
        Storage::Cpu(v) => v.read().unwrap_or_else(std::sync::PoisonError::into_inner),
        Storage::Gpu(_) => unreachable!("host_read on a GPU tensor: ops check devices first"),
    }
}

/// Held-lock write access to host storage for the CPU path of in-place ops.
pub(crate) fn host_write(t: &Tensor) -> std::sync::RwLockWriteGuard<'_, Vec<f32>> {
    match &t.storage {
        Storage::Cpu(v) => v.write().unwrap_or_else(std::sync::PoisonError::into_inner),
        Storage::Gpu(_) => unreachable!("host_write on a GPU tensor: ops check devices first"),
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Tensor>();
    is::<Gpu>();
}
