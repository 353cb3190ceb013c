//! Moving tensors across the host-device boundary: reads (async, blocking, batched), writes,
//! device-to-device copies, and wrapping or exposing the application's own wgpu buffers.

use std::sync::Arc;

use super::{checked_numel, contiguous_strides, DType, GpuStorage, Storage, Tensor};
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::gpu::pool::RawBuffer;
use crate::gpu::Gpu;

impl Tensor {
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
            dtype: crate::tensor::DType::F32,
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
        let t = self.readable()?;
        let (first, words) = t.word_range();
        match &t.storage {
            Storage::Cpu(data) => Ok(t.decode(&data.read()[first..first + words])),
            Storage::Gpu(s) => {
                let bytes = s
                    .gpu
                    .inner
                    .read_bytes(s.raw(), first as u64 * 4, words as u64 * 4, block)
                    .await?;
                Ok(t.decode(&bytemuck::pod_collect_to_vec(&bytes)))
            }
        }
    }

    /// A contiguous view of this tensor to read: strided views (f32 or f16) are copied
    /// contiguous first.
    fn readable(&self) -> Result<Tensor> {
        self.contiguous()
    }

    /// The storage words a contiguous view's elements occupy: (first word, count).
    pub(crate) fn word_range(&self) -> (usize, usize) {
        match self.dtype {
            DType::F32 => (self.offset, self.numel()),
            DType::F16 => {
                let first = self.offset / 2;
                (first, (self.offset + self.numel()).div_ceil(2) - first)
            }
        }
    }

    /// This contiguous view's elements as f32, from the words of [`Tensor::word_range`].
    fn decode(&self, words: &[f32]) -> Vec<f32> {
        match self.dtype {
            DType::F32 => words.to_vec(),
            DType::F16 => super::dtype::unpack(words, self.offset % 2, self.numel()),
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
            .map(|t| t.readable())
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
                    let (word, words) = t.word_range();
                    (raw, word as u64 * 4, words as u64 * 4)
                })
                .collect();
            let bytes = first.gpu.inner.read_many_bytes(&ranges, block).await?;
            for (&j, b) in group.iter().zip(bytes) {
                out[j] = Some(views[j].decode(&bytemuck::pod_collect_to_vec(&b)));
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
        if self.dtype == DType::F16 {
            return self.write_f16(data);
        }
        match &self.storage {
            Storage::Cpu(v) => {
                let mut v = v.write();
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

    /// [`Tensor::write`] into an f16 tensor: the values narrowed (to nearest even) and packed
    /// into the words the view covers. A view that starts or ends in the middle of a word keeps
    /// the other half of that word as it was (read back first from a GPU: one wait).
    fn write_f16(&self, data: &[f32]) -> Result<()> {
        let (first, count) = self.word_range();
        if count == 0 {
            return Ok(());
        }
        let lead = self.offset % 2;
        let mut bits = vec![0u16; count * 2];
        let (head, tail) = (lead == 1, (self.offset + data.len()) % 2 == 1);
        if head || tail {
            // The halves outside the view, as they are now.
            let edges: Vec<f32> = match &self.storage {
                Storage::Cpu(v) => v.read()[first..first + count].to_vec(),
                Storage::Gpu(s) => {
                    let bytes = pollster::block_on(s.gpu.inner.read_bytes(
                        s.raw(),
                        first as u64 * 4,
                        count as u64 * 4,
                        true,
                    ))?;
                    bytemuck::pod_collect_to_vec(&bytes)
                }
            };
            for (k, w) in edges.iter().enumerate() {
                let w = w.to_bits();
                bits[2 * k] = w as u16;
                bits[2 * k + 1] = (w >> 16) as u16;
            }
        }
        bits[lead..lead + data.len()].copy_from_slice(&super::dtype::narrow_bits(data));
        let words = super::dtype::pack(&bits);
        match &self.storage {
            Storage::Cpu(v) => {
                v.write()[first..first + count].copy_from_slice(&words);
                Ok(())
            }
            Storage::Gpu(s) => s.gpu.inner.upload(
                s.raw(),
                first as u64 * 4,
                bytemuck::cast_slice(&words),
                true,
            ),
        }
    }

    /// A copy on `device` (a clone when it is already there), of the same element type. Moving
    /// off a GPU reads it back, which waits for the device.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device().same(device) {
            return Ok(self.clone());
        }
        let data = self.read_blocking()?;
        match self.dtype {
            DType::F32 => Tensor::from_slice(device, &data, &self.shape),
            // Every f16 value is an f32 and narrows back to itself.
            DType::F16 => {
                Tensor::from_f16_bits(device, &super::dtype::narrow_bits(&data), &self.shape)
            }
        }
    }
}
