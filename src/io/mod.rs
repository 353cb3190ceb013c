//! Weights in and out as safetensors with PyTorch's parameter names, so a model moves between
//! PyTorch and timeloom both ways; atomic writes (temporary file, fsync, rename), so a crash never
//! leaves a half-written file where a good one was.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{shape_str, Error, Result};
use crate::nn::Module;
use crate::tensor::{DType, Tensor};

/// Tensors read from a safetensors file, by name, as host f32 values.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    /// name → (shape, row-major values)
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// The file's `__metadata__`.
    pub metadata: HashMap<String, String>,
    /// Where they came from, for messages.
    pub source: String,
    /// name → why timeloom did not read a tensor (its dtype: half precision, bool; or integers
    /// past 2²⁴, which f32 does not hold exactly). Asking for one of them is an error that says
    /// so; holding them is not.
    pub skipped: BTreeMap<String, String>,
    /// name → dtype of the entries read from integers (ids, lengths, counters): `get` returns
    /// them as f32, but loading one into a float parameter is an error (an int8-quantised
    /// weight read as plain numbers would be silently wrong).
    pub integers: BTreeMap<String, String>,
}

/// The largest integer up to which every integer is exactly an f32.
const EXACT_F32: f64 = 16_777_216.0;

impl Weights {
    /// The entries under `prefix`, with it taken off: the part of a larger model's
    /// `state_dict` that one module holds (`"lstm."` makes `lstm.weight_ih_l0` into
    /// `weight_ih_l0`). Entries elsewhere are left out. The prefix is taken as written: include
    /// the `.` that ends a submodule's name (`"enc"` would also match `encoder.`).
    ///
    /// ```
    /// use timeloom::io::{load_into_strict, parse, serialize};
    /// use timeloom::nn::{Linear, Module};
    /// use timeloom::{Device, Rng};
    /// let dev = Device::Cpu;
    /// let (enc, dec) = (Linear::new(&dev, 3, 4, &mut Rng::new(1))?, Linear::new(&dev, 4, 2, &mut Rng::new(2))?);
    /// // A PyTorch model with `encoder` and `decoder` submodules saves both under one dict.
    /// let mut named: Vec<_> = enc.named_parameters().into_iter().map(|(k, t)| (format!("encoder.{k}"), t)).collect();
    /// named.extend(dec.named_parameters().into_iter().map(|(k, t)| (format!("decoder.{k}"), t)));
    /// let file = parse("model.safetensors", &serialize(&named, None)?)?;
    /// let fresh = Linear::new(&dev, 4, 2, &mut Rng::new(3))?;
    /// load_into_strict(&fresh, &file.strip_prefix("decoder."))?;
    /// assert_eq!(fresh.weight.read_blocking()?, dec.weight.read_blocking()?);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn strip_prefix(&self, prefix: &str) -> Weights {
        fn under<V: Clone>(m: &BTreeMap<String, V>, prefix: &str) -> BTreeMap<String, V> {
            m.iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
                .collect()
        }
        Weights {
            tensors: under(&self.tensors, prefix),
            metadata: self.metadata.clone(),
            source: format!("{} (under `{prefix}`)", self.source),
            skipped: under(&self.skipped, prefix),
            integers: under(&self.integers, prefix),
        }
    }

    /// Every key, read or skipped, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self
            .tensors
            .keys()
            .chain(self.skipped.keys())
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys.into_iter()
    }

    /// The values of `key`, checked against `shape`.
    pub fn get(&self, key: &str, shape: &[usize]) -> Result<&[f32]> {
        let (s, v) = self.tensors.get(key).ok_or_else(|| Error::Format {
            what: format!("{}: key `{key}`", self.source),
            message: match self.skipped.get(key) {
                Some(why) => format!(
                    "was not read: {why}; timeloom reads F32, F16, BF16, F64 and integers up to 2^24 (save with tensor.float() in PyTorch)"
                ),
                None => "missing; the file does not hold this parameter".into(),
            },
        })?;
        if s != shape {
            return Err(Error::Format {
                what: format!("{}: key `{key}`", self.source),
                message: format!(
                    "has shape {}; the model expects {}",
                    shape_str(s),
                    shape_str(shape)
                ),
            });
        }
        Ok(v)
    }
}

/// Parses safetensors bytes; `what` names them in errors. F32 tensors are read as they are, F16
/// and BF16 ones (PyTorch's `model.half()` and `.bfloat16()` files) widened exactly, F64 ones
/// rounded to f32, and integer ones (PyTorch saves token ids, targets and lengths as int64) as
/// f32 when every value is within ±2²⁴, where f32 holds integers exactly; other tensors (bool,
/// 8-bit floats, larger integers) are listed in `skipped` with the reason (an error only when a
/// model asks for one). An f16 model takes the values back exactly (`Tensor::write` narrows
/// each to itself).
pub fn parse(what: &str, bytes: &[u8]) -> Result<Weights> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Format {
        what: what.to_string(),
        message: format!("not a valid safetensors file: {e}"),
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::Format {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    let mut tensors = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    let mut integers = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        // Little-endian integers as f64 (i64 and u64 past 2^53 round, which only makes them fail
        // the ±2^24 check below, as they should).
        macro_rules! ints {
            ($t:ty) => {
                Some(
                    bytemuck::pod_collect_to_vec::<u8, $t>(data)
                        .into_iter()
                        .map(|v| v as f64)
                        .collect::<Vec<f64>>(),
                )
            };
        }
        let ints: Option<Vec<f64>> = match view.dtype() {
            Dtype::I64 => ints!(i64),
            Dtype::I32 => ints!(i32),
            Dtype::I16 => ints!(i16),
            Dtype::I8 => ints!(i8),
            Dtype::U64 => ints!(u64),
            Dtype::U32 => ints!(u32),
            Dtype::U16 => ints!(u16),
            Dtype::U8 => ints!(u8),
            _ => None,
        };
        let values: Vec<f32> = match (view.dtype(), ints) {
            (Dtype::F32, _) => bytemuck::pod_collect_to_vec(data),
            (Dtype::F64, _) => bytemuck::pod_collect_to_vec::<u8, f64>(data)
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            // Every binary16 and bfloat16 value is exactly an f32.
            (Dtype::F16, _) => bytemuck::pod_collect_to_vec::<u8, u16>(data)
                .into_iter()
                .map(crate::tensor::dtype::f16_to_f32)
                .collect(),
            (Dtype::BF16, _) => bytemuck::pod_collect_to_vec::<u8, u16>(data)
                .into_iter()
                .map(|b| f32::from_bits(u32::from(b) << 16))
                .collect(),
            (dtype, Some(v)) => {
                match v.iter().find(|x| x.abs() > EXACT_F32) {
                    None => {
                        integers.insert(name.clone(), format!("{dtype:?}"));
                        v.into_iter().map(|x| x as f32).collect()
                    }
                    Some(x) => {
                        skipped.insert(
                        name,
                        format!("{dtype:?} with the value {x}, past the ±2^24 that f32 holds exactly"),
                    );
                        continue;
                    }
                }
            }
            (other, None) => {
                skipped.insert(name, format!("dtype {other:?}"));
                continue;
            }
        };
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(Weights {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
        source: what.to_string(),
        skipped,
        integers,
    })
}

/// Reads a safetensors file.
pub fn load(path: impl AsRef<Path>) -> Result<Weights> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&path.display().to_string(), &bytes)
}

/// Serialises named tensors (read back from their devices) with `metadata`: f32 tensors as F32
/// entries, f16 ones as F16 (half the bytes; PyTorch reads them as float16).
///
/// Blocking: the tensors are read back with one submission and one wait per device
/// ([`Tensor::read_all_blocking`]), a host application's device included. Call it (and
/// [`save_module`]) where a stall is acceptable, not inside a frame.
pub fn serialize(
    named: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let tensors: Vec<&Tensor> = named.iter().map(|(_, t)| t).collect();
    let values = Tensor::read_all_blocking(&tensors)?;
    let host: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = named
        .iter()
        .zip(values)
        .map(|((name, t), v)| {
            let (dtype, bytes) = match t.dtype() {
                DType::F32 => (Dtype::F32, bytemuck::cast_slice(&v).to_vec()),
                // The values came from f16, so each narrows back to its own bits.
                DType::F16 => (
                    Dtype::F16,
                    bytemuck::cast_slice(&crate::tensor::dtype::narrow_bits(&v)).to_vec(),
                ),
            };
            (name.clone(), dtype, t.shape().to_vec(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = host
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Format {
            what: "serialize".into(),
            message: e.to_string(),
        })?;
    safetensors::tensor::serialize(views, metadata).map_err(|e| Error::Format {
        what: "serialize".into(),
        message: e.to_string(),
    })
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed to disk, then renamed
/// over `path`. A failure at any point leaves the previous file as it was.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path.as_ref(), bytes, None)
}

/// [`write_atomic`] that can fail after `fail_after` bytes, to test the interrupted case.
#[doc(hidden)]
pub fn write_atomic_with(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> Result<()> {
    let io = |p: &Path| {
        let p: PathBuf = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // A name no other writer uses (process, counter, clock), created exclusively: two threads
    // saving to one path each write their own file, and a stale temporary is never reused.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{nonce}-{nanos}",
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        match fail_after {
            Some(n) if n < bytes.len() => {
                f.write_all(&bytes[..n]).map_err(io(&tmp))?;
                return Err(Error::Io {
                    path: tmp.clone(),
                    source: std::io::Error::other("simulated failure part-way through the write"),
                });
            }
            _ => f.write_all(bytes).map_err(io(&tmp))?,
        }
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        // Persist the rename itself (best effort: not every platform can open a directory).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A module's parameters and buffers by name: what a checkpoint holds (PyTorch's `state_dict`).
pub fn state(module: &dyn Module) -> Vec<(String, Tensor)> {
    let mut v = module.named_parameters();
    v.extend(module.named_buffers());
    v
}

/// Saves a module's parameters and buffers under their names, atomically. Blocking, as
/// [`serialize`] is.
pub fn save_module(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    write_atomic(path, &serialize(&state(module), None)?)
}

/// [`load_into`], and also an error when `weights` holds entries the module does not have, as
/// PyTorch's `load_state_dict(strict=True)`: the error lists every missing and every unexpected
/// key. PyTorch's `num_batches_tracked` counters (timeloom's batch norm keeps none) are not
/// counted as unexpected. Take a submodule's part of a larger model's file with
/// [`Weights::strip_prefix`] first.
pub fn load_into_strict(module: &dyn Module, weights: &Weights) -> Result<()> {
    let params = state(module);
    let names: std::collections::HashSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<&str> = params
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !weights.tensors.contains_key(*n) && !weights.skipped.contains_key(*n))
        .collect();
    let unexpected: Vec<&str> = weights
        .keys()
        .filter(|k| {
            !names.contains(k)
                && *k != "num_batches_tracked"
                && !k.ends_with(".num_batches_tracked")
        })
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let list = |v: &[&str]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        return Err(Error::Format {
            what: weights.source.clone(),
            message: format!(
                "does not match the module: missing key(s) {}; unexpected key(s) {} (nothing was \
                 loaded; a part of a larger model's file is taken with Weights::strip_prefix)",
                list(&missing),
                list(&unexpected)
            ),
        });
    }
    load_into(module, weights)
}

/// Loads every parameter and buffer of `module` from `weights` (names and shapes must match;
/// extra keys in the file are allowed: [`load_into_strict`] refuses them). Nothing is written
/// unless every one is found and fits.
pub fn load_into(module: &dyn Module, weights: &Weights) -> Result<()> {
    let params = state(module);
    let mut values = Vec::with_capacity(params.len());
    for (name, p) in &params {
        let v = weights.get(name, p.shape())?;
        if let Some(dtype) = weights.integers.get(name) {
            return Err(Error::Format {
                what: format!("{}: key `{name}`", weights.source),
                message: format!(
                    "holds integers ({dtype}) for a float parameter: a quantised weight must be \
                     converted to float first (tensor.float() with its scale, in PyTorch); \
                     nothing was loaded"
                ),
            });
        }
        if v.len() != p.numel() || !p.is_contiguous() {
            return Err(Error::Format {
                what: format!("weight {name}"),
                message: format!(
                    "holds {} values for a parameter of {} elements (or the parameter is a view): nothing was loaded",
                    v.len(),
                    p.numel()
                ),
            });
        }
        values.push(v);
    }
    for ((_, p), v) in params.iter().zip(values) {
        p.write(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Recurrent;
    use crate::{Device, Rng};

    /// Integer entries of every width are read while they are within ±2²⁴; one past it, and a
    /// bool entry, are skipped with the reason, which asking for them repeats; a half-precision
    /// entry is read (widened).
    #[test]
    fn integer_entries_are_read_exactly_or_skipped_with_the_reason() {
        let i64s: Vec<u8> = [0i64, -5, 16_777_216]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let big: Vec<u8> = [16_777_217i64]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let i32s: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let u8s: Vec<u8> = vec![255, 0];
        let f16s: Vec<u8> = vec![0, 60]; // 0x3c00: 1.0
        let bools: Vec<u8> = vec![1];
        let entries = [
            ("ids", Dtype::I64, vec![3], &i64s),
            ("big", Dtype::I64, vec![1], &big),
            ("pair", Dtype::I32, vec![2], &i32s),
            ("bytes", Dtype::U8, vec![2], &u8s),
            ("half", Dtype::F16, vec![1], &f16s),
            ("flag", Dtype::BOOL, vec![1], &bools),
        ];
        let views: Vec<(String, TensorView<'_>)> = entries
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let bytes = safetensors::tensor::serialize(views, None).unwrap();
        let w = parse("mem", &bytes).unwrap();
        assert_eq!(w.get("ids", &[3]).unwrap(), &[0.0, -5.0, 16_777_216.0]);
        assert_eq!(w.get("pair", &[2]).unwrap(), &[7.0, -1.0]);
        assert_eq!(w.get("bytes", &[2]).unwrap(), &[255.0, 0.0]);
        assert_eq!(w.get("half", &[1]).unwrap(), &[1.0]);
        for (key, says) in [("big", "16777217"), ("flag", "BOOL")] {
            let e = w.get(key, &[1]).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(key), "{e}");
        }
        assert_eq!(
            w.keys().collect::<Vec<_>>(),
            ["big", "bytes", "flag", "half", "ids", "pair"]
        );
        // An integer entry is no float parameter (an int8-quantised weight): refused by name,
        // and nothing is loaded.
        let dev = Device::Cpu;
        let lin = crate::nn::Linear::new(&dev, 2, 1, &mut Rng::new(3)).unwrap();
        let before = lin.weight.read_blocking().unwrap();
        let q: Vec<u8> = vec![3, 253];
        let b: Vec<u8> = 0.5f32.to_le_bytes().to_vec();
        let views = vec![
            (
                "weight".to_string(),
                TensorView::new(Dtype::I8, vec![1, 2], &q).unwrap(),
            ),
            (
                "bias".to_string(),
                TensorView::new(Dtype::F32, vec![1], &b).unwrap(),
            ),
        ];
        let w = parse(
            "quantised",
            &safetensors::tensor::serialize(views, None).unwrap(),
        )
        .unwrap();
        let e = load_into(&lin, &w).unwrap_err().to_string();
        assert!(e.contains("`weight`") && e.contains("I8"), "{e}");
        assert_eq!(lin.weight.read_blocking().unwrap(), before);
    }

    #[test]
    fn weights_round_trip_and_bad_files_are_format_errors() {
        let dev = Device::Cpu;
        let lstm = Recurrent::lstm(3, 4)
            .layers(2)
            .bidirectional(true)
            .build(&dev, &mut Rng::new(1))
            .unwrap();
        let bytes = serialize(&lstm.named_parameters(), None).unwrap();
        let w = parse("mem", &bytes).unwrap();
        assert!(w.tensors.contains_key("weight_hh_l1_reverse"));
        let other = Recurrent::lstm(3, 4)
            .layers(2)
            .bidirectional(true)
            .build(&dev, &mut Rng::new(2))
            .unwrap();
        load_into(&other, &w).unwrap();
        for ((n, a), (_, b)) in lstm.named_parameters().iter().zip(other.named_parameters()) {
            assert_eq!(
                a.read_blocking().unwrap(),
                b.read_blocking().unwrap(),
                "{n}"
            );
        }
        // Missing key, wrong shape, garbage: typed errors naming the key.
        let small = Recurrent::lstm(3, 5).build(&dev, &mut Rng::new(3)).unwrap();
        let e = load_into(&small, &w).unwrap_err();
        assert!(
            matches!(&e, Error::Format { what, .. } if what.contains("weight_ih_l0")),
            "{e}"
        );
        let gru = Recurrent::gru(3, 4)
            .layers(3)
            .build(&dev, &mut Rng::new(3))
            .unwrap();
        let e = load_into(&gru, &w).unwrap_err();
        assert!(
            e.to_string().contains("weight_ih_l0") || e.to_string().contains("l2"),
            "{e}"
        );
        assert!(matches!(
            parse("junk", b"not safetensors at all"),
            Err(Error::Format { .. })
        ));
        assert!(matches!(
            parse("cut", &bytes[..bytes.len() / 2]),
            Err(Error::Format { .. })
        ));
    }

    /// 4,000 corrupted files (flipped bytes, truncations, hostile header lengths and offsets):
    /// each is a typed error or a valid parse, never a panic or an unbounded allocation.
    #[test]
    fn corrupted_files_never_panic() {
        let dev = Device::Cpu;
        let lstm = Recurrent::gru(2, 3).build(&dev, &mut Rng::new(1)).unwrap();
        let good = serialize(&lstm.named_parameters(), None).unwrap();
        let mut rng = Rng::new(99);
        let mut errors = 0;
        for case in 0..4000 {
            let mut bytes = good.clone();
            match case % 4 {
                0 => {
                    for _ in 0..rng.int(1, 8) {
                        let i = rng.int(0, bytes.len() - 1);
                        bytes[i] = rng.next_u64() as u8;
                    }
                }
                1 => bytes.truncate(rng.int(0, bytes.len())),
                2 => bytes[..8].copy_from_slice(&(rng.next_u64() >> rng.int(0, 63)).to_le_bytes()),
                _ => {
                    // A header that declares offsets far past the data.
                    let header = r#"{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#;
                    bytes = (header.len() as u64).to_le_bytes().to_vec();
                    bytes.extend_from_slice(header.as_bytes());
                    bytes.extend_from_slice(&[0; 16]);
                }
            }
            if parse("fuzz", &bytes).is_err() {
                errors += 1;
            }
        }
        assert!(
            errors > 2000,
            "most corruptions are caught: {errors} of 4000"
        );
    }

    #[test]
    fn an_interrupted_write_leaves_the_previous_file_loadable() {
        let dir = std::env::temp_dir().join(format!("timeloom-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let t = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0], &[2]).unwrap();
        let good = serialize(&[("a".into(), t.clone())], None).unwrap();
        write_atomic(&path, &good).unwrap();
        let newer = serialize(&[("a".into(), t.scale(3.0).unwrap())], None).unwrap();
        assert!(write_atomic_with(&path, &newer, Some(10)).is_err());
        let back = load(&path).unwrap();
        assert_eq!(back.get("a", &[2]).unwrap(), &[1.0, 2.0]);
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    /// Threads saving to one path at once each write their own temporary file: every save
    /// succeeds, the file is always one whole version, and no temporary is left behind.
    #[test]
    fn concurrent_saves_to_one_path_never_mix() {
        let dir = std::env::temp_dir().join(format!("timeloom-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.bin");
        let versions: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 256 * 1024]).collect();
        std::thread::scope(|s| {
            for v in &versions {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..10 {
                        write_atomic(path, v).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&path).unwrap();
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).ok();
        assert!(versions.contains(&got), "a mixed file");
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
