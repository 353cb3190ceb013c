//! Tuned choices remembered on disk, per adapter and driver, so a second process on a machine
//! skips the timing the first one paid. The device layer reads and writes the file; what an entry
//! means, and whether it is one the engine would itself choose, is for the kernel that reads it
//! (`crate::kernels` validates every entry against its candidates: the file is never trusted).
//!
//! Where: the folder in `GpuOptions::tuning_cache`, else `$TIMELOOM_TUNING_CACHE`, else
//! `$XDG_CACHE_HOME/timeloom`, else `$HOME/.cache/timeloom`; `off` (or an empty path) keeps
//! nothing. One file per adapter key (name, vendor and device ids, backend, driver and its
//! version, timeloom's version), `tuning-<hash of the key>.txt`, whose second line repeats the
//! key: another driver or another timeloom reads another file, and a file whose key differs
//! (stale, copied, colliding) or that fails to parse in any line is ignored as a whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The first line of a tuning file.
const MAGIC: &str = "timeloom tuning v1";

/// Entries as read from disk, untrusted: (kernel, shape class) → (override name, value) pairs.
pub(crate) type RawEntries = HashMap<(String, u64), Vec<(String, f64)>>;

/// The file of one adapter, and what it held when the device was made.
#[derive(Debug, Default)]
pub(crate) struct TuningCache {
    /// None: persistence is off.
    pub path: Option<PathBuf>,
    /// The adapter key the file must repeat on its second line.
    pub key: String,
    /// What the file held (empty when absent, stale or corrupt).
    pub read: RawEntries,
}

/// The adapter key: what must match for a tuned choice to carry over.
pub(crate) fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} | vendor {:#x} device {:#x} | {:?} | {} {} | timeloom {}",
        info.name,
        info.vendor,
        info.device,
        info.backend,
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION")
    )
    .replace(['\n', '\r'], " ")
}

/// The folder the options, the environment or the platform's cache directory name; None: off.
pub(crate) fn folder(asked: Option<&Path>) -> Option<PathBuf> {
    let off = |p: &Path| p.as_os_str().is_empty() || p == Path::new("off");
    if let Some(p) = asked {
        return (!off(p)).then(|| p.to_path_buf());
    }
    if let Some(v) = std::env::var_os("TIMELOOM_TUNING_CACHE") {
        let p = PathBuf::from(v);
        return (!off(&p)).then_some(p);
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("timeloom"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("timeloom"))
}

/// FNV-1a, 64 bits: a stable file name for a key (std's hasher may change between releases).
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl TuningCache {
    /// The cache of the adapter `info` in `folder` (None: off), read now.
    pub(crate) fn open(folder: Option<PathBuf>, info: &wgpu::AdapterInfo) -> TuningCache {
        let key = adapter_key(info);
        let path = folder.map(|f| f.join(format!("tuning-{:016x}.txt", fnv64(&key))));
        let read = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| parse(&text, &key))
            .unwrap_or_default();
        TuningCache { path, key, read }
    }

    /// Writes `kernel`'s entries (shape class → override values), with what the file held for
    /// other kernels, as the adapter's file, atomically: a temporary beside it, then a rename.
    /// A failure (a read-only home) loses only the saving.
    pub(crate) fn write<'a>(
        &self,
        kernel: &str,
        entries: impl Iterator<Item = (u64, &'a [(&'static str, f64)])>,
    ) {
        let Some(path) = &self.path else {
            return;
        };
        let line = |kernel: &str, class: u64, pairs: Vec<String>| {
            format!("{kernel} {class} {}", pairs.join(" "))
        };
        let mut lines: Vec<String> = entries
            .map(|(class, pairs)| {
                let values = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
                line(kernel, class, values)
            })
            .collect();
        lines.extend(self.read.iter().filter(|((k, _), _)| k != kernel).map(
            |((k, class), pairs)| {
                let values = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
                line(k, *class, values)
            },
        ));
        lines.sort();
        let text = format!("{MAGIC}\nadapter {}\n{}\n", self.key, lines.join("\n"));
        let Some(dir) = path.parent() else {
            return;
        };
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".tuning.tmp-{}-{nonce}", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// The entries of a file whose header names `key`; None for any other file or any bad line.
fn parse(text: &str, key: &str) -> Option<RawEntries> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC || lines.next()?.strip_prefix("adapter ")? != key {
        return None;
    }
    let mut out = RawEntries::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let kernel = words.next()?.to_string();
        let class: u64 = words.next()?.parse().ok()?;
        let pairs = words
            .map(|w| {
                let (n, v) = w.split_once('=')?;
                let v: f64 = v.parse().ok().filter(|v: &f64| v.is_finite())?;
                Some((n.to_string(), v))
            })
            .collect::<Option<Vec<_>>>()?;
        if pairs.is_empty() || out.insert((kernel, class), pairs).is_some() {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_only_when_whole_and_for_this_adapter() {
        let key =
            "llvmpipe | vendor 0x10005 device 0x0 | Vulkan | llvmpipe Mesa 25 | timeloom 0.1.0";
        let good = format!("{MAGIC}\nadapter {key}\nmatmul 3 TM=64 TN=64\nmatmul 1 TM=8 TN=128\n");
        let read = parse(&good, key).expect("a whole file for this adapter");
        assert_eq!(
            read[&("matmul".to_string(), 3)],
            vec![("TM".to_string(), 64.0), ("TN".to_string(), 64.0)]
        );
        // Another adapter or driver, another version of the format, a bad line anywhere, a
        // repeated entry, a non-finite value: the whole file is ignored.
        assert!(parse(&good, "another adapter").is_none());
        assert!(parse(&good.replace("v1", "v2"), key).is_none());
        assert!(parse(&format!("{good}matmul x TM=1\n"), key).is_none());
        assert!(parse(&format!("{good}matmul 5 TM\n"), key).is_none());
        assert!(parse(&format!("{good}matmul 3 TM=32\n"), key).is_none());
        assert!(parse(&format!("{good}matmul 6 TM=inf\n"), key).is_none());
        assert!(parse("", key).is_none());
        assert!(parse("\u{0}\u{1}garbage", key).is_none());
    }

    #[test]
    fn the_folder_follows_options_then_environment_and_off_means_off() {
        assert_eq!(
            folder(Some(Path::new("/tmp/t"))),
            Some(PathBuf::from("/tmp/t"))
        );
        assert_eq!(folder(Some(Path::new("off"))), None);
        assert_eq!(folder(Some(Path::new(""))), None);
        assert_ne!(fnv64("a"), fnv64("b"));
    }
}
