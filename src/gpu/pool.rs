//! BufferPool: reuses storage and staging buffers by size class, so that a training loop allocates
//! nothing new after its first step. Host-app buffers (`Gpu::from_wgpu`) are never pooled.
//!
//! A buffer released while recorded work may still read it is not reusable at once: the encoder
//! keeps it until the next submission, after which queue order protects it (see `encoder.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::lock;
use super::stats::Counters;
use crate::error::{Error, Result};

/// Smallest buffer the pool hands out, in bytes.
const MIN_CLASS: u64 = 256;

/// What a pooled buffer is for; each kind has its own free lists and usage flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BufferKind {
    /// Tensor storage: STORAGE | COPY_SRC | COPY_DST.
    Storage,
    /// Readback staging: MAP_READ | COPY_DST.
    Staging,
}

impl BufferKind {
    fn usage(self) -> wgpu::BufferUsages {
        match self {
            BufferKind::Storage => {
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST
            }
            BufferKind::Staging => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        }
    }
}

/// A device buffer with the pool's bookkeeping: a process-unique id (the bind-group cache keys on
/// it) and the size class it returns to.
#[derive(Debug)]
pub(crate) struct RawBuffer {
    pub buffer: wgpu::Buffer,
    pub id: u64,
    pub class: u64,
    pub kind: BufferKind,
}

/// Rounds `bytes` up to its size class: quarter steps between powers of two, so at most 25% of a
/// buffer is slack while sizes that recur land in the same class.
pub(crate) fn size_class(bytes: u64) -> u64 {
    if bytes <= MIN_CLASS {
        return MIN_CLASS;
    }
    let floor_log2 = 63 - u64::from((bytes - 1).leading_zeros());
    let step = 1u64 << (floor_log2 - 2);
    bytes.div_ceil(step) * step
}

/// Free buffers by (kind, class).
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<(BufferKind, u64), Vec<RawBuffer>>>,
}

static NEXT_BUFFER_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a buffer the bind-group cache must tell apart from every other.
pub(crate) fn next_buffer_id() -> u64 {
    NEXT_BUFFER_ID.fetch_add(1, Ordering::Relaxed)
}

impl BufferPool {
    /// A buffer of at least `bytes`, reused when one of its class is free.
    pub fn acquire(
        &self,
        device: &wgpu::Device,
        counters: &Counters,
        kind: BufferKind,
        bytes: u64,
        max_bytes: u64,
        op: &'static str,
    ) -> Result<RawBuffer> {
        let class = size_class(bytes).min(max_bytes.max(bytes));
        if let Some(buffer) = lock(&self.free).get_mut(&(kind, class)).and_then(Vec::pop) {
            Counters::add(&counters.pool_hits, 1);
            return Ok(buffer);
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timeloom pooled buffer"),
            size: class,
            usage: kind.usage(),
            mapped_at_creation: false,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(Error::OutOfMemory { op, bytes: class });
        }
        Counters::add(&counters.pool_misses, 1);
        counters.largest_buffer.fetch_max(class, Ordering::Relaxed);
        Counters::add(&counters.bytes_resident, class);
        Counters::add(&counters.buffers_resident, 1);
        Ok(RawBuffer {
            buffer,
            id: next_buffer_id(),
            class,
            kind,
        })
    }

    /// Makes `buffer` available again. Only call once no unsubmitted work uses it.
    pub fn release(&self, buffer: RawBuffer) {
        lock(&self.free)
            .entry((buffer.kind, buffer.class))
            .or_default()
            .push(buffer);
    }

    /// Destroys `buffer` instead of keeping it (one whose state is unknown after a failure,
    /// such as a staging buffer with a map pending), keeping the residency counters true.
    pub fn discard(&self, counters: &Counters, buffer: RawBuffer) {
        counters.buffers_resident.fetch_sub(1, Ordering::Relaxed);
        counters
            .bytes_resident
            .fetch_sub(buffer.class, Ordering::Relaxed);
        buffer.buffer.destroy();
    }

    /// Destroys every free buffer; returns how many bytes that gave back.
    pub fn trim(&self, counters: &Counters) -> u64 {
        let mut freed = 0;
        for (_, list) in lock(&self.free).drain() {
            for b in list {
                freed += b.class;
                self.discard(counters, b);
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        for bytes in [1u64, 4, 255, 256, 257, 1000, 4096, 4097, 123_457, 1 << 30] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(
                bytes <= 256 || c * 4 <= bytes * 5 + 4 * 64,
                "{bytes} -> {c}"
            );
            assert_eq!(c % 4, 0);
        }
        assert_eq!(size_class(1000), size_class(1001));
    }
}
