//! An optimizer's state in and out of checkpoints, as `torch.optim.Optimizer.state_dict()`: the
//! step count (which drives the schedule) and, per parameter, its update count and its two state
//! tensors, as named tensors and metadata strings that `crate::io` writes to safetensors
//! (atomically). The hyper-parameters are not saved: like a model's architecture they belong to
//! the code that builds the optimizer. Only the algorithm's name is, so a state never loads into
//! an optimizer that would read its tensors as something else (Adam's moments as a momentum).
//!
//! The base rates are saved too, as torch saves its `param_groups`: a rate lowered by
//! `ReduceOnPlateau` must resume lowered.
//!
//! Layout (the char_rnn example's checkpoint format since its first version, so its old files
//! still load): tensors `optim.{key}.s1` and `optim.{key}.s2` (and `optim.{key}.s3` for AMSGrad
//! and centred RMSProp) for each parameter that has been updated, metadata `optimizer_step`,
//! `optimizer_param_steps` (one count per parameter, comma separated, 0 for one never updated),
//! `optimizer_algorithm`, `optimizer_state_format`, and since groups came,
//! `optimizer_groups` (each group's size), `optimizer_lr` (the optimizer's base rate) and
//! `optimizer_group_lrs` (each group's own rate, empty where it follows the optimizer's). A
//! parameter's key is its index, or the name the caller gives it (`Module::named_parameters`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{Algorithm, Optimizer, ParamState};
use crate::error::{shape_str, Error, Result};
use crate::io::{self, Weights};
use crate::tensor::Tensor;

const STEP: &str = "optimizer_step";
const PARAM_STEPS: &str = "optimizer_param_steps";
const ALGORITHM: &str = "optimizer_algorithm";
const FORMAT: &str = "optimizer_state_format";
const FORMAT_VERSION: &str = "1";
const GROUPS: &str = "optimizer_groups";
const LR: &str = "optimizer_lr";
const GROUP_LRS: &str = "optimizer_group_lrs";
const PREFIX: &str = "optim.";

/// An optimizer's state as a checkpoint holds it: named tensors and metadata strings. Write it
/// with [`io::serialize`] and [`io::write_atomic`], alone or beside a model's tensors in one
/// file (the names start with `optim.`, so they do not collide with a module's).
///
/// The tensors are the optimizer's own buffers, not copies: the next `step` updates them in
/// place, so serialise the dict before stepping again.
///
/// ```
/// use timeloom::{io, Device, Optimizer, Tensor};
/// let w = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0], &[2])?.requires_grad();
/// let mut opt = Optimizer::adam(vec![w.clone()], 1e-2);
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?;
/// let dict = opt.named_state_dict(&["w".to_string()])?;
/// let mut tensors = vec![("w".to_string(), w.clone())]; // the model's tensors beside it
/// tensors.extend(dict.tensors);
/// let bytes = io::serialize(&tensors, Some(dict.metadata))?;
/// assert!(io::parse("checkpoint", &bytes)?.tensors.contains_key("optim.w.s1"));
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StateDict {
    /// `optim.{key}.s1`, `optim.{key}.s2` (and `.s3` where the rule keeps a third) for each
    /// parameter that has been updated.
    pub tensors: Vec<(String, Tensor)>,
    /// `optimizer_step`, `optimizer_param_steps`, `optimizer_algorithm`,
    /// `optimizer_state_format`, `optimizer_groups`, `optimizer_lr` and `optimizer_group_lrs`.
    pub metadata: HashMap<String, String>,
}

/// The name saved for the rule: the variant, not its hyper-parameters (a β changed on resume
/// is the user's choice; a state read by another rule is a bug).
fn algorithm_name(a: Algorithm) -> &'static str {
    a.name()
}

fn keys(key: &str) -> [String; 3] {
    ["s1", "s2", "s3"].map(|s| format!("{PREFIX}{key}.{s}"))
}

impl Optimizer {
    /// The state to checkpoint, each parameter keyed by its index (`optim.0.s1`, ...); load it
    /// with [`Optimizer::load_state_dict`] into an optimizer built the same way over the same
    /// parameters. [`Optimizer::save`] writes it to a file.
    ///
    /// ```
    /// use timeloom::{Device, Optimizer, Tensor};
    /// let w = Tensor::from_slice(&Device::Cpu, &[3.0], &[1])?.requires_grad();
    /// let mut opt = Optimizer::momentum(vec![w.clone()], 0.1, 0.9);
    /// w.square()?.sum_all()?.backward()?;
    /// opt.step()?;
    /// let dict = opt.state_dict();
    /// assert_eq!(dict.metadata["optimizer_step"], "1");
    /// assert_eq!(dict.tensors[0].0, "optim.0.s1"); // the momentum buffer
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn state_dict(&self) -> StateDict {
        let names: Vec<String> = (0..self.params.len()).map(|i| i.to_string()).collect();
        self.named_state_dict(&names)
            .expect("index names are distinct and one per parameter")
    }

    /// [`Optimizer::state_dict`] with each parameter keyed by its name instead of its index
    /// (`optim.{name}.s1`): pass the names of `Module::named_parameters`, in the order the
    /// optimizer was given the parameters.
    ///
    /// ```
    /// use timeloom::nn::{Linear, Module};
    /// use timeloom::{Device, Optimizer, Rng};
    /// let layer = Linear::new(&Device::Cpu, 3, 2, &mut Rng::new(0))?;
    /// let opt = Optimizer::adam(layer.parameters(), 1e-3);
    /// let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
    /// let dict = opt.named_state_dict(&names)?;
    /// assert_eq!(dict.metadata["optimizer_param_steps"], "0,0"); // no update yet
    /// assert!(dict.tensors.is_empty());
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when `names` does not hold one distinct name per parameter.
    pub fn named_state_dict(&self, names: &[String]) -> Result<StateDict> {
        self.check_names("Optimizer::named_state_dict", names)?;
        let mut tensors = Vec::new();
        let mut steps = Vec::with_capacity(self.params.len());
        for (name, state) in names.iter().zip(&self.states) {
            steps.push(state.as_ref().map_or(0, |s| s.step).to_string());
            if let Some(s) = state {
                let [k1, k2, k3] = keys(name);
                tensors.push((k1, s.s1.clone()));
                tensors.push((k2, s.s2.clone()));
                if let Some(s3) = &s.s3 {
                    tensors.push((k3, s3.clone()));
                }
            }
        }
        let list = |f: &dyn Fn(&(usize, super::GroupSettings)) -> String| {
            self.groups.iter().map(f).collect::<Vec<_>>().join(",")
        };
        let metadata = [
            (STEP, self.step.to_string()),
            (PARAM_STEPS, steps.join(",")),
            (ALGORITHM, algorithm_name(self.algorithm).to_string()),
            (FORMAT, FORMAT_VERSION.to_string()),
            (GROUPS, list(&|(n, _)| n.to_string())),
            // Display of an f32 is the shortest string that reads back to the same bits.
            (LR, self.lr.to_string()),
            (
                GROUP_LRS,
                list(&|(_, g)| g.lr.map_or(String::new(), |v| v.to_string())),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(StateDict { tensors, metadata })
    }

    /// Restores a state written from [`Optimizer::state_dict`] (read back with [`io::load`] or
    /// [`io::parse`]). Everything is checked before anything changes: the algorithm, one step
    /// count per parameter, each updated parameter's two tensors with the parameter's shape, and
    /// no state for parameters this optimizer does not have. Keys that do not start with
    /// `optim.` (a model's weights in the same file) are ignored.
    ///
    /// ```
    /// use timeloom::{io, Device, Optimizer, Tensor};
    /// let dev = Device::Cpu;
    /// let w = Tensor::from_slice(&dev, &[3.0], &[1])?.requires_grad();
    /// let mut opt = Optimizer::adam(vec![w.clone()], 0.1);
    /// w.square()?.sum_all()?.backward()?;
    /// opt.step()?;
    /// let dict = opt.state_dict();
    /// let bytes = io::serialize(&dict.tensors, Some(dict.metadata))?;
    ///
    /// let mut resumed = Optimizer::adam(vec![w.clone()], 0.1);
    /// resumed.load_state_dict(&io::parse("opt", &bytes)?)?;
    /// assert_eq!(resumed.steps(), 1);
    /// // SGD would read Adam's moments as a momentum buffer: refused, nothing loaded.
    /// let mut sgd = Optimizer::momentum(vec![w], 0.1, 0.9);
    /// assert!(sgd.load_state_dict(&io::parse("opt", &bytes)?).is_err());
    /// assert_eq!(sgd.steps(), 0);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Format`, naming the file and the key, for a state of another algorithm, another number
    /// of parameters, a missing or extra state tensor, a shape that differs from its
    /// parameter's, or metadata that does not parse.
    pub fn load_state_dict(&mut self, weights: &Weights) -> Result<()> {
        let names: Vec<String> = (0..self.params.len()).map(|i| i.to_string()).collect();
        self.load_named_state_dict(weights, &names)
    }

    /// [`Optimizer::load_state_dict`] for a state written by [`Optimizer::named_state_dict`]
    /// with the same `names`.
    ///
    /// ```
    /// use timeloom::nn::{Linear, Module};
    /// use timeloom::{io, Device, Optimizer, Rng, Tensor};
    /// let dev = Device::Cpu;
    /// let layer = Linear::new(&dev, 3, 2, &mut Rng::new(0))?;
    /// let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
    /// let mut opt = Optimizer::adam(layer.parameters(), 1e-3);
    /// let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[1, 3])?;
    /// layer.forward(&x)?.sum_all()?.backward()?;
    /// opt.step()?;
    /// let dict = opt.named_state_dict(&names)?;
    /// let bytes = io::serialize(&dict.tensors, Some(dict.metadata))?;
    ///
    /// let mut resumed = Optimizer::adam(layer.parameters(), 1e-3);
    /// resumed.load_named_state_dict(&io::parse("opt", &bytes)?, &names)?;
    /// assert_eq!(resumed.steps(), 1);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Optimizer::load_state_dict`], and `InvalidArgument` when `names` does not hold one
    /// distinct name per parameter.
    pub fn load_named_state_dict(&mut self, weights: &Weights, names: &[String]) -> Result<()> {
        self.check_names("Optimizer::load_named_state_dict", names)?;
        let w = weights;
        let bad = |k: &str, message: String| Error::Format {
            what: format!("{}: `{k}`", w.source),
            message,
        };
        let meta = |k: &'static str| {
            w.metadata.get(k).ok_or_else(|| {
                bad(
                    k,
                    "missing: not an optimizer state (save one with Optimizer::state_dict)".into(),
                )
            })
        };
        if let Some(v) = w.metadata.get(FORMAT) {
            if v != FORMAT_VERSION {
                return Err(bad(
                    FORMAT,
                    format!("is version {v}; this timeloom reads version {FORMAT_VERSION}: load it with the timeloom that wrote it"),
                ));
            }
        }
        // Absent from files written before the algorithm was recorded (char_rnn's first
        // checkpoints): their shapes are still checked below.
        let ours = algorithm_name(self.algorithm);
        if let Some(theirs) = w.metadata.get(ALGORITHM) {
            if theirs != ours {
                return Err(bad(
                    ALGORITHM,
                    format!("the state is {theirs}'s; this optimizer is {ours}, which would read its tensors as something else: build the optimizer with {theirs}, or start {ours} without a saved state"),
                ));
            }
        }
        let step: u32 = meta(STEP)?
            .parse()
            .map_err(|_| bad(STEP, format!("`{}` is not a step count", w.metadata[STEP])))?;
        // The bias corrections raise β to the step count as an i32, and each step adds one.
        if step > i32::MAX as u32 {
            return Err(bad(
                STEP,
                format!("is {step}, past the {} steps an optimizer counts", i32::MAX),
            ));
        }
        let listed = meta(PARAM_STEPS)?;
        let steps: Vec<u32> = if listed.is_empty() {
            Vec::new()
        } else {
            listed
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| bad(PARAM_STEPS, format!("`{v}` is not a step count")))
                })
                .collect::<Result<_>>()?
        };
        if steps.len() != self.params.len() {
            return Err(bad(
                PARAM_STEPS,
                format!(
                    "holds the state of {} parameters; this optimizer has {}: load the state of an optimizer built over the same parameters, in the same order",
                    steps.len(),
                    self.params.len()
                ),
            ));
        }
        let rates = self.saved_rates(w)?;
        let needs_s3 = self.needs_s3();
        let mut expected = HashSet::new();
        let mut values = Vec::with_capacity(self.params.len());
        for ((name, param), &count) in names.iter().zip(&self.params).zip(&steps) {
            let [k1, k2, k3] = keys(name);
            let found = |k: &str| w.tensors.contains_key(k) || w.skipped.contains_key(k);
            let (has1, has2) = (found(&k1), found(&k2));
            if has1 && found(&k3) != needs_s3 {
                return Err(bad(&k3, self.s3_mismatch(found(&k3))));
            }
            if has1 != has2 {
                let (have, missing) = if has1 { (&k1, &k2) } else { (&k2, &k1) };
                return Err(bad(
                    missing,
                    format!("missing while `{have}` is there: the state of parameter `{name}` is incomplete"),
                ));
            }
            if count > i32::MAX as u32 {
                return Err(bad(
                    PARAM_STEPS,
                    format!(
                        "gives parameter `{name}` {count} updates, past the {} an optimizer counts",
                        i32::MAX
                    ),
                ));
            }
            if !has1 {
                if count > 0 {
                    return Err(bad(
                        &k1,
                        format!("missing: parameter `{name}` has a step count of {count}, but its state tensors are not in the file"),
                    ));
                }
                values.push(None);
                continue;
            }
            let mut pair = Vec::with_capacity(3);
            for k in [&k1, &k2].into_iter().chain(needs_s3.then_some(&k3)) {
                let (shape, v) = w.tensors.get(k.as_str()).ok_or_else(|| {
                    bad(
                        k,
                        format!(
                            "was not read ({}); optimizer state is F32",
                            w.skipped.get(k.as_str()).map_or("?", String::as_str)
                        ),
                    )
                })?;
                if shape != param.shape() || v.len() != param.numel() {
                    return Err(bad(
                        k,
                        format!(
                            "has shape {}; parameter `{name}` has {}: the state was saved for another model",
                            shape_str(shape),
                            shape_str(param.shape())
                        ),
                    ));
                }
                pair.push(v.as_slice());
            }
            expected.insert(k1);
            expected.insert(k2);
            if needs_s3 {
                expected.insert(k3);
            }
            values.push(Some((count, pair)));
        }
        let extra = w
            .tensors
            .keys()
            .chain(w.skipped.keys())
            .find(|k| k.starts_with(PREFIX) && !expected.contains(k.as_str()));
        if let Some(k) = extra {
            return Err(bad(
                k,
                "belongs to no parameter of this optimizer: the state was saved for other parameters (or under other names)".into(),
            ));
        }
        let mut states = Vec::with_capacity(values.len());
        for (param, v) in self.params.iter().zip(values) {
            states.push(match v {
                None => None,
                Some((count, pair)) => {
                    let dev = param.device();
                    Some(ParamState {
                        step: count,
                        s1: Tensor::from_slice(&dev, pair[0], param.shape())?,
                        s2: Tensor::from_slice(&dev, pair[1], param.shape())?,
                        s3: match pair.get(2) {
                            Some(v) => Some(Tensor::from_slice(&dev, v, param.shape())?),
                            None => None,
                        },
                    })
                }
            });
        }
        self.load_state(step, states)?;
        if let Some((lr, group_lrs)) = rates {
            self.lr = lr;
            for ((_, g), own) in self.groups.iter_mut().zip(group_lrs) {
                g.lr = own;
            }
        }
        Ok(())
    }

    /// The base rates a state saved (`None` for a file written before groups came), checked
    /// against this optimizer's groups.
    #[allow(clippy::type_complexity)]
    fn saved_rates(&self, w: &Weights) -> Result<Option<(f32, Vec<Option<f32>>)>> {
        let bad = |k: &str, message: String| Error::Format {
            what: format!("{}: `{k}`", w.source),
            message,
        };
        let (Some(sizes), Some(lr), Some(lrs)) = (
            w.metadata.get(GROUPS),
            w.metadata.get(LR),
            w.metadata.get(GROUP_LRS),
        ) else {
            return Ok(None);
        };
        let ours: Vec<String> = self.groups.iter().map(|(n, _)| n.to_string()).collect();
        if *sizes != ours.join(",") {
            return Err(bad(
                GROUPS,
                format!("is `{sizes}` (the size of each parameter group); this optimizer's groups are `{}`: build the optimizer with the same groups, in the same order", ours.join(",")),
            ));
        }
        let rate = |k: &str, v: &str| -> Result<f32> {
            match v.trim().parse::<f32>() {
                Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
                _ => Err(bad(k, format!("`{v}` is not a learning rate"))),
            }
        };
        let lr = rate(LR, lr)?;
        let own = lrs
            .split(',')
            .map(|v| {
                if v.is_empty() {
                    Ok(None)
                } else {
                    rate(GROUP_LRS, v).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        if own.len() != self.groups.len() {
            return Err(bad(
                GROUP_LRS,
                format!("lists {} rates for {} groups", own.len(), self.groups.len()),
            ));
        }
        Ok(Some((lr, own)))
    }

    /// Writes [`Optimizer::state_dict`] to a safetensors file, atomically (a crash leaves the
    /// previous file). Blocking: the state is read back from the device.
    ///
    /// ```
    /// use timeloom::{Device, Optimizer, Tensor};
    /// let w = Tensor::from_slice(&Device::Cpu, &[3.0], &[1])?.requires_grad();
    /// let mut opt = Optimizer::adam(vec![w.clone()], 0.1);
    /// w.square()?.sum_all()?.backward()?;
    /// opt.step()?;
    /// let path = std::env::temp_dir().join(format!("timeloom-doc-opt-{}.safetensors", std::process::id()));
    /// opt.save(&path)?;
    /// let mut resumed = Optimizer::adam(vec![w], 0.1);
    /// resumed.load(&path)?;
    /// assert_eq!(resumed.steps(), 1);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let dict = self.state_dict();
        io::write_atomic(path, &io::serialize(&dict.tensors, Some(dict.metadata))?)
    }

    /// Reads a file written by [`Optimizer::save`] into this optimizer, as
    /// [`Optimizer::load_state_dict`] does (same checks; nothing changes on an error).
    ///
    /// ```
    /// use timeloom::{Device, Error, Optimizer, Tensor};
    /// let w = Tensor::from_slice(&Device::Cpu, &[3.0], &[1])?.requires_grad();
    /// let mut opt = Optimizer::sgd(vec![w], 0.1);
    /// let e = opt.load("/no/such/optimizer.safetensors").unwrap_err();
    /// assert!(matches!(e, Error::Io { .. }));
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Io` when the file cannot be read, and those of [`Optimizer::load_state_dict`].
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.load_state_dict(&io::load(path)?)
    }

    fn check_names(&self, op: &'static str, names: &[String]) -> Result<()> {
        if names.len() != self.params.len() {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "{} names for {} parameters: pass one name per parameter, in the order the optimizer was given them",
                    names.len(),
                    self.params.len()
                ),
            });
        }
        let mut seen = HashSet::new();
        if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "the name `{twice}` is given to two parameters; their states would share keys"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
