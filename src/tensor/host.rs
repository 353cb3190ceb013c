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
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: BTreeMap::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A buffer of `n` floats, every one `value`: a pooled one of that length when there is one.
pub(crate) fn filled(n: usize, value: f32) -> Vec<f32> {
    if n >= MIN_POOLED {
        let mut p = pool();
        if let Some(mut v) = p.free.get_mut(&n).and_then(Vec::pop) {
            p.bytes -= n * 4;
            drop(p);
            v.fill(value);
            return v;
        }
    }
    vec![value; n]
}

/// A copy of `data` in a pooled buffer when there is one of its length.
pub(crate) fn copied(data: &[f32]) -> Vec<f32> {
    if data.len() >= MIN_POOLED {
        let mut p = pool();
        if let Some(mut v) = p.free.get_mut(&data.len()).and_then(Vec::pop) {
            p.bytes -= data.len() * 4;
            drop(p);
            v.copy_from_slice(data);
            return v;
        }
    }
    data.to_vec()
}

fn give_back(v: Vec<f32>) {
    let n = v.len();
    if n < MIN_POOLED || v.capacity() != n {
        return;
    }
    let mut p = pool();
    if p.bytes + n * 4 <= MAX_POOLED_BYTES {
        p.bytes += n * 4;
        p.free.entry(n).or_default().push(v);
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

    /// A dropped large buffer comes back for the next request of its length, refilled; a small
    /// one and one of another length do not.
    #[test]
    fn large_buffers_are_reused_and_refilled() {
        // A length no other test uses, so tests running at once cannot take it.
        let n = MIN_POOLED + 4099;
        let first = HostStorage::new(filled(n, 7.0));
        let ptr = first.read().as_ptr();
        drop(first);
        let again = filled(n, 0.0);
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer was not reused");
        assert!(again.iter().all(|&x| x == 0.0));
        let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
        drop(HostStorage::new(again));
        let copy = copied(&src);
        assert_eq!(copy.as_ptr(), ptr);
        assert_eq!(copy, src);
        let other = filled(n + 1, 0.0);
        assert_ne!(other.as_ptr(), ptr);
    }
}
