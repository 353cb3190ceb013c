//! Counters of what the engine asked of the device: dispatches, submissions, compiles, pool traffic
//! and bytes moved. Tests assert the numbers the design promises; users profile with them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a [`Gpu`](crate::Gpu)'s counters, from [`Gpu::stats`](crate::Gpu::stats).
///
/// Every field but `bytes_resident` and `buffers_resident` counts events since the `Gpu` was
/// created; subtract two snapshots with [`Stats::since`] to count what a piece of code did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submissions: u64,
    /// Compute passes begun (a pass ends when a copy or a submission needs the encoder).
    pub passes: u64,
    /// Compute pipelines compiled (each kernel and specialisation once per device).
    pub pipeline_compiles: u64,
    /// Bind groups created (they are cached and reused while the same buffers recur).
    pub bind_groups_created: u64,
    /// Buffer requests served from the pool without allocating.
    pub pool_hits: u64,
    /// Buffer requests that allocated a new device buffer.
    pub pool_misses: u64,
    /// Bytes of device memory held by the pool now, in use or free.
    pub bytes_resident: u64,
    /// Device buffers held by the pool now, in use or free.
    pub buffers_resident: u64,
    /// Bytes written from the host to the device.
    pub bytes_uploaded: u64,
    /// Bytes read back from the device to the host.
    pub bytes_downloaded: u64,
    /// Blocking waits on the device (only ever on a device timeloom owns).
    pub blocking_waits: u64,
    /// The largest buffer the pool has allocated, in bytes (a memory high-water check: fused
    /// attention never allocates an L×L buffer).
    pub largest_buffer: u64,
}

impl Stats {
    /// What happened between `earlier` and `self`; resident sizes stay as in `self`. Counters
    /// saturate at 0, so snapshots passed in the wrong order give zeros rather than a panic.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            dispatches: self.dispatches.saturating_sub(earlier.dispatches),
            submissions: self.submissions.saturating_sub(earlier.submissions),
            passes: self.passes.saturating_sub(earlier.passes),
            pipeline_compiles: self
                .pipeline_compiles
                .saturating_sub(earlier.pipeline_compiles),
            bind_groups_created: self
                .bind_groups_created
                .saturating_sub(earlier.bind_groups_created),
            pool_hits: self.pool_hits.saturating_sub(earlier.pool_hits),
            pool_misses: self.pool_misses.saturating_sub(earlier.pool_misses),
            bytes_resident: self.bytes_resident,
            buffers_resident: self.buffers_resident,
            bytes_uploaded: self.bytes_uploaded.saturating_sub(earlier.bytes_uploaded),
            bytes_downloaded: self
                .bytes_downloaded
                .saturating_sub(earlier.bytes_downloaded),
            blocking_waits: self.blocking_waits.saturating_sub(earlier.blocking_waits),
            largest_buffer: self.largest_buffer,
        }
    }
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub submissions: AtomicU64,
    pub passes: AtomicU64,
    pub pipeline_compiles: AtomicU64,
    pub bind_groups_created: AtomicU64,
    pub pool_hits: AtomicU64,
    pub pool_misses: AtomicU64,
    pub bytes_resident: AtomicU64,
    pub buffers_resident: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    pub blocking_waits: AtomicU64,
    pub largest_buffer: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            dispatches: get(&self.dispatches),
            submissions: get(&self.submissions),
            passes: get(&self.passes),
            pipeline_compiles: get(&self.pipeline_compiles),
            bind_groups_created: get(&self.bind_groups_created),
            pool_hits: get(&self.pool_hits),
            pool_misses: get(&self.pool_misses),
            bytes_resident: get(&self.bytes_resident),
            buffers_resident: get(&self.buffers_resident),
            bytes_uploaded: get(&self.bytes_uploaded),
            bytes_downloaded: get(&self.bytes_downloaded),
            blocking_waits: get(&self.blocking_waits),
            largest_buffer: get(&self.largest_buffer),
        }
    }
}
