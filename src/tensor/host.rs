//! Host storage of CPU tensors and the pool that recycles it. Large host buffers come from the
//! allocator as fresh zero pages (mmap) and go back to the OS when freed, so a training step that
//! makes the same tensors every step paid a page fault per 4 KiB every step (a tenth of an LSTM's
//! CPU time). A dropped buffer of at least [`MIN_POOLED`] floats waits here for the next request
//! of the same length, up to [`MAX_POOLED_BYTES`] in all; the CPU twin of the GPU buffer pool.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Buffers shorter than this (64 KiB) go straight back to the allocator, which keeps them well.
const MIN_POOLED: usize = 1 << 14;
/// The most the pool holds; a buffer dropped past it is freed.
const MAX_POOLED_BYTES: usize = 512 << 20;

struct Pool {
    /// Free buffers by length (each one's capacity equals its length).
    free: BTreeMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
    /// The most bytes it holds.
    cap: usize,
}

impl Pool {
    const fn new(cap: usize) -> Pool {
        Pool {
            free: BTreeMap::new(),
            bytes: 0,
            cap,
        }
    }

    /// A free buffer of length `n`, if one waits.
    fn take(&mut self, n: usize) -> Option<Vec<f32>> {
        let list = self.free.get_mut(&n)?;
        let v = list.pop()?;
        if list.is_empty() {
            self.free.remove(&n);
        }
        self.bytes -= n * 4;
        Some(v)
    }

    /// Keeps `v` for reuse when it is large enough and there is room; else frees it.
    fn put(&mut self, v: Vec<f32>) {
        let n = v.len();
        if n >= MIN_POOLED && v.capacity() == n && self.bytes + n * 4 <= self.cap {
            self.bytes += n * 4;
            self.free.entry(n).or_default().push(v);
        }
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new(MAX_POOLED_BYTES));

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pooled buffer of length `n` when there is one (the lock is not taken for small ones).
fn reuse(n: usize) -> Option<Vec<f32>> {
    if n < MIN_POOLED {
        return None;
    }
    pool().take(n)
}

/// A buffer of `n` floats, every one `value`: a pooled one of that length when there is one.
pub(crate) fn filled(n: usize, value: f32) -> Vec<f32> {
    match reuse(n) {
        Some(mut v) => {
            v.fill(value);
            v
        }
        None => vec![value; n],
    }
}

/// A buffer of `n` floats for an op's output, which the op overwrites whole: a pooled one of
/// that length as it is (no fill) when there is one, else fresh zeros (pages the OS zeroes on
/// first touch). The crate's own tests (in release too, as CI runs them) and builds with debug
/// assertions hand out NaNs instead, pooled or fresh, so a twin that reads an output element
/// it did not write fails its tests instead of reading a previous tensor's values.
pub(crate) fn for_output(n: usize) -> Vec<f32> {
    if cfg!(any(test, debug_assertions)) {
        return filled(n, f32::NAN);
    }
    match reuse(n) {
        Some(v) => v,
        None => vec![0.0; n],
    }
}

/// A copy of `data` in a pooled buffer when there is one of its length.
pub(crate) fn copied(data: &[f32]) -> Vec<f32> {
    match reuse(data.len()) {
        Some(mut v) => {
            v.copy_from_slice(data);
            v
        }
        None => data.to_vec(),
    }
}

fn give_back(v: Vec<f32>) {
    if v.len() >= MIN_POOLED {
        pool().put(v);
    }
}

/// The storage of a CPU tensor (shared by its views); its buffer goes back to the pool when the
/// last view drops.
pub(crate) struct HostStorage(RwLock<Vec<f32>>);

impl HostStorage {
    pub(crate) fn new(data: Vec<f32>) -> HostStorage {
        HostStorage(RwLock::new(data))
    }

    /// Read access; a poisoned lock (a panic while writing) still gives the data.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Vec<f32>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Vec<f32>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HostStorage {
    fn drop(&mut self) {
        let v = std::mem::take(self.0.get_mut().unwrap_or_else(PoisonError::into_inner));
        give_back(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a pool of its own (tests running at once share the global one): a put buffer comes
    /// back for its length only, the byte count follows, small buffers and those past the cap
    /// are freed.
    #[test]
    fn buffers_come_back_by_length_within_the_cap() {
        let mut pool = Pool::new(3 * MIN_POOLED * 4);
        let a = vec![1.0f32; MIN_POOLED];
        let ptr = a.as_ptr();
        pool.put(a);
        assert_eq!(pool.bytes, MIN_POOLED * 4);
        assert!(pool.take(MIN_POOLED + 1).is_none());
        let again = pool.take(MIN_POOLED).expect("the buffer put back");
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!((pool.bytes, pool.free.len()), (0, 0));
        pool.put(vec![0.0; MIN_POOLED - 1]);
        pool.put(vec![0.0; 2 * MIN_POOLED]);
        pool.put(vec![0.0; 2 * MIN_POOLED]);
        assert_eq!(
            pool.bytes,
            2 * MIN_POOLED * 4,
            "the second would pass the cap"
        );
    }

    /// Through the global pool: what comes back is refilled, or copied, whole.
    #[test]
    fn pooled_buffers_are_refilled() {
        let n = MIN_POOLED + 4099;
        drop(HostStorage::new(filled(n, 7.0)));
        assert!(filled(n, 0.0).iter().all(|&x| x == 0.0));
        let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
        drop(HostStorage::new(filled(n, 3.0)));
        assert_eq!(copied(&src), src);
    }

    /// In the crate's tests an op's output is NaN throughout, pooled or fresh, large or small:
    /// what makes every twin test also a test that the twin writes all of its output.
    #[test]
    fn outputs_are_poisoned_in_tests() {
        for n in [1, 1000, MIN_POOLED + 77] {
            drop(HostStorage::new(filled(n, 5.0)));
            assert!(for_output(n).iter().all(|x| x.is_nan()), "{n}");
        }
    }
}
