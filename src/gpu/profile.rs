//! The device-time profile: where a device timeloom owns spends its time, kernel by kernel, from
//! GPU timestamps written between dispatches. Off unless asked for (`GpuOptions::profile` or
//! `TIMELOOM_PROFILE=1`), because it makes every submission wait for its timestamps; the counters
//! of [`Stats`](crate::Stats) stay the cheap, always-on view.
//!
//! Each compute pass starts with a timestamp and every dispatch is followed by one, so dispatch
//! i's time is `ts[i] − ts[i − 1]`: its own run plus the barrier before it, which is what a
//! dispatch costs in a chain. Copies between passes are charged to nobody.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Timestamps one query set holds (wgpu's `QUERY_SET_MAX_QUERIES`); a longer batch is submitted
/// in parts, as a full parameter arena is.
pub(crate) const QUERIES: u32 = 4096;

/// Device time spent in one kernel specialisation, from [`Gpu::profile`](crate::Gpu::profile).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel's name with its non-zero `override` constants, e.g.
    /// `matmul WG_M=16 WG_N=16 BK=16`: which tile the autotune chose shows here.
    pub kernel: String,
    /// Dispatches timed.
    pub dispatches: u64,
    /// Device milliseconds, summed over those dispatches.
    pub ms: f64,
}

/// The device-time profile since the device was made or the profile last taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// One entry per kernel specialisation, the most expensive first.
    pub kernels: Vec<KernelTime>,
    /// Device milliseconds over every timed dispatch (the sum of `kernels`).
    pub ms: f64,
    /// Dispatches timed (the sum of `kernels`).
    pub dispatches: u64,
}

impl Profile {
    /// A plain-text table: kernel, dispatches, ms, ms per dispatch and share of the total, the
    /// `top` most expensive rows and one line for the rest.
    pub fn table(&self, top: usize) -> String {
        let mut s = format!(
            "{:<56} {:>6} {:>10} {:>10} {:>6}\n",
            "kernel", "disp", "ms", "us/disp", "share"
        );
        let row = |s: &mut String, name: &str, n: u64, ms: f64| {
            s.push_str(&format!(
                "{:<56} {:>6} {:>10.3} {:>10.1} {:>5.1}%\n",
                name,
                n,
                ms,
                1e3 * ms / n.max(1) as f64,
                100.0 * ms / self.ms.max(f64::MIN_POSITIVE)
            ));
        };
        for k in self.kernels.iter().take(top) {
            row(&mut s, &k.kernel, k.dispatches, k.ms);
        }
        let rest = &self.kernels[top.min(self.kernels.len())..];
        if !rest.is_empty() {
            let label = format!("({} more)", rest.len());
            row(
                &mut s,
                &label,
                rest.iter().map(|k| k.dispatches).sum(),
                rest.iter().map(|k| k.ms).sum(),
            );
        }
        row(&mut s, "total", self.dispatches, self.ms);
        s
    }
}

/// Pipeline key: kernel name and its overrides' bits.
type Key = (&'static str, Vec<(&'static str, u64)>);

/// The profiler's state, kept in the pending batch (under its lock).
pub(crate) struct Profiler {
    pub query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// What timestamp i closes: `None` for a pass's opening stamp, else the kernel's label index.
    marks: Vec<Option<usize>>,
    labels: Vec<String>,
    label_of: HashMap<Key, usize>,
    /// Per label: dispatches and device nanoseconds.
    totals: Vec<(u64, f64)>,
    period_ns: f64,
}

impl Profiler {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Profiler {
        let bytes = u64::from(QUERIES) * 8;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Profiler {
            query_set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timeloom profile"),
                ty: wgpu::QueryType::Timestamp,
                count: QUERIES,
            }),
            resolve: buffer(
                "timeloom profile resolve",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "timeloom profile readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            marks: Vec::new(),
            labels: Vec::new(),
            label_of: HashMap::new(),
            totals: Vec::new(),
            period_ns: f64::from(queue.get_timestamp_period()),
        }
    }

    /// Whether `n` more timestamps fit in this batch.
    pub fn has_room(&self, n: usize) -> bool {
        self.marks.len() + n <= QUERIES as usize
    }

    /// The index of the next timestamp, marked as a pass's opening stamp.
    pub fn open_pass(&mut self) -> u32 {
        self.marks.push(None);
        self.marks.len() as u32 - 1
    }

    /// The index of the next timestamp, marked as closing a dispatch of `kernel`.
    pub fn close_dispatch(
        &mut self,
        kernel: &'static str,
        overrides: &[(&'static str, f64)],
    ) -> u32 {
        let key: Key = (
            kernel,
            overrides.iter().map(|&(n, v)| (n, v.to_bits())).collect(),
        );
        let next = self.labels.len();
        let label = *self.label_of.entry(key).or_insert(next);
        if label == next {
            let mut name = kernel.to_string();
            for &(n, v) in overrides.iter().filter(|&&(_, v)| v != 0.0) {
                name.push_str(&format!(" {n}={v}"));
            }
            self.labels.push(name);
            self.totals.push((0, 0.0));
        }
        self.marks.push(Some(label));
        self.marks.len() as u32 - 1
    }

    /// Records the copy of this batch's timestamps into the readback buffer; returns how many
    /// there are (0: nothing to read after the submission).
    pub fn resolve(&mut self, encoder: &mut wgpu::CommandEncoder) -> u32 {
        let n = self.marks.len() as u32;
        if n > 0 {
            encoder.resolve_query_set(&self.query_set, 0..n, &self.resolve, 0);
            encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, u64::from(n) * 8);
        }
        n
    }

    /// After the submission that resolved `n` timestamps has finished: adds each dispatch's
    /// time to its kernel's total.
    pub fn collect(&mut self, device: &wgpu::Device, n: u32) -> Result<()> {
        let marks = std::mem::take(&mut self.marks);
        if n == 0 {
            return Ok(());
        }
        let slice = self.readback.slice(0..u64::from(n) * 8);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
            // Cancel the pending map, so the next batch may copy into the buffer again.
            self.readback.unmap();
            return Err(Error::Gpu {
                message: format!("waiting for the profile's timestamps failed: {e}"),
            });
        }
        let ticks: Result<Vec<u64>> = slice
            .get_mapped_range()
            .map(|view| bytemuck::cast_slice(&view).to_vec())
            .map_err(|e| Error::Gpu {
                message: format!("reading the profile's timestamps failed: {e}"),
            });
        self.readback.unmap();
        let ticks = ticks?;
        for (i, mark) in marks.iter().enumerate().skip(1) {
            if let Some(label) = *mark {
                // A timestamp counter may wrap or, on some drivers, step back: such a pair
                // counts as zero time rather than as a huge one.
                let dt = ticks[i].saturating_sub(ticks[i - 1]);
                let t = &mut self.totals[label];
                t.0 += 1;
                t.1 += dt as f64 * self.period_ns;
            }
        }
        Ok(())
    }

    /// The profile so far; with `reset`, starts a new one.
    pub fn take(&mut self, reset: bool) -> Profile {
        let mut kernels: Vec<KernelTime> = self
            .labels
            .iter()
            .zip(&self.totals)
            .filter(|(_, t)| t.0 > 0)
            .map(|(name, &(n, ns))| KernelTime {
                kernel: name.clone(),
                dispatches: n,
                ms: ns / 1e6,
            })
            .collect();
        kernels.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        if reset {
            self.totals.iter_mut().for_each(|t| *t = (0, 0.0));
        }
        Profile {
            ms: kernels.iter().map(|k| k.ms).sum(),
            dispatches: kernels.iter().map(|k| k.dispatches).sum(),
            kernels,
        }
    }
}
