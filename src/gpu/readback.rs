//! Moving bytes between host and device: uploads through `queue.write_buffer`, readback through a
//! pooled staging buffer, `map_async` and a futures-intrusive oneshot channel.
//!
//! On a device timeloom owns, a read waits on the device itself. On a host application's device
//! (`Gpu::from_wgpu`) the async read never polls: it completes when the application polls.

use futures_intrusive::channel::shared::oneshot_channel;

use super::context::GpuInner;
use super::lock;
use super::pool::{BufferKind, RawBuffer};
use super::stats::Counters;
use crate::error::{Error, Result};

impl GpuInner {
    /// Writes `data` into `dst` at byte `offset`. When `dst` may be used by recorded work (an
    /// existing tensor written in place), that work is submitted first, because a queued write
    /// lands before the next submission's commands.
    pub(crate) fn upload(
        &self,
        dst: &RawBuffer,
        offset: u64,
        data: &[u8],
        in_use: bool,
    ) -> Result<()> {
        self.check_fault()?;
        if data.is_empty() {
            return Ok(());
        }
        if in_use {
            let mut p = lock(&self.pending);
            if p.has_work() {
                self.flush_locked(&mut p);
            }
        }
        self.queue.write_buffer(&dst.buffer, offset, data);
        Counters::add(&self.counters.bytes_uploaded, data.len() as u64);
        Ok(())
    }

    /// Reads `bytes` bytes of `src` from byte `offset` (both multiples of 4). `block` lets the
    /// read wait on the device even when timeloom does not own it (the caller asked to block).
    pub(crate) async fn read_bytes(
        &self,
        src: &RawBuffer,
        offset: u64,
        bytes: u64,
        block: bool,
    ) -> Result<Vec<u8>> {
        let mut all = self.read_many_bytes(&[(src, offset, bytes)], block).await?;
        Ok(all.pop().expect("one range in, one out"))
    }

    /// Reads several (buffer, byte offset, byte count) ranges with one submission and one wait:
    /// every copy is recorded into the pending batch, the batch is submitted once, and all
    /// staging buffers are mapped before the single wait.
    pub(crate) async fn read_many_bytes(
        &self,
        ranges: &[(&RawBuffer, u64, u64)],
        block: bool,
    ) -> Result<Vec<Vec<u8>>> {
        self.check_fault()?;
        let mut staged = Vec::with_capacity(ranges.len());
        for &(_, _, bytes) in ranges {
            if bytes == 0 {
                staged.push(None);
                continue;
            }
            match self.pool.acquire(
                &self.device,
                &self.counters,
                BufferKind::Staging,
                bytes,
                self.limits.max_buffer_size,
                "read",
            ) {
                Ok(b) => staged.push(Some(b)),
                Err(e) => {
                    // Nothing was recorded yet: the ones already taken go straight back.
                    for b in staged.into_iter().flatten() {
                        self.pool.release(b);
                    }
                    return Err(e);
                }
            }
        }
        let index = {
            let mut p = lock(&self.pending);
            for (&(src, offset, bytes), staging) in ranges.iter().zip(&staged) {
                if let Some(staging) = staging {
                    self.encoder(&mut p).copy_buffer_to_buffer(
                        &src.buffer,
                        offset,
                        &staging.buffer,
                        0,
                        bytes,
                    );
                }
            }
            self.flush_locked(&mut p)
        };
        let mut receivers = Vec::with_capacity(ranges.len());
        for (&(_, _, bytes), staging) in ranges.iter().zip(&staged) {
            receivers.push(staging.as_ref().map(|staging| {
                let (sender, receiver) = oneshot_channel();
                staging
                    .buffer
                    .slice(0..bytes)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = sender.send(r);
                    });
                receiver
            }));
        }
        if self.owned || block {
            if let Err(e) = self.wait(index) {
                // Their maps are still pending: destroyed, not pooled, and counted as gone.
                for b in staged.into_iter().flatten() {
                    self.pool.discard(&self.counters, b);
                }
                return Err(e);
            }
        }
        let mut out = Vec::with_capacity(ranges.len());
        let mut failure = None;
        for ((&(_, _, bytes), staging), receiver) in ranges.iter().zip(staged).zip(receivers) {
            let (Some(staging), Some(receiver)) = (staging, receiver) else {
                out.push(Vec::new());
                continue;
            };
            let result = match receiver.receive().await {
                Some(Ok(())) => {
                    let data = staging
                        .buffer
                        .slice(0..bytes)
                        .get_mapped_range()
                        .map(|view| view.to_vec())
                        .map_err(|e| Error::Gpu {
                            message: format!("reading back {bytes} bytes: {e}"),
                        });
                    staging.buffer.unmap();
                    data
                }
                _ => self.check_fault().and(Err(Error::Gpu {
                    message: format!("mapping {bytes} bytes for readback failed"),
                })),
            };
            // The staging buffer is unmapped (or failed to map); either way it can serve again,
            // and every one goes back to the pool even when an earlier range failed.
            self.pool.release(staging);
            match result {
                Ok(data) => {
                    Counters::add(&self.counters.bytes_downloaded, bytes);
                    out.push(data);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
