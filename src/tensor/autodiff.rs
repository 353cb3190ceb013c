//! The tape: reverse-mode autodiff. An op on tensors that track gradients records a node (its
//! inputs and a backward closure over what it saved); `backward` walks the nodes in reverse
//! topological order, recording the backward kernels into the same pending encoder as the
//! forward, so forward + backward + update stay one submission.
//!
//! Gradients of parameters (leaves) live in one buffer each, reused every step. `zero_grad`
//! dispatches nothing: it marks the buffer stale, and the next gradient overwrites it (β = 0)
//! instead of adding, so accumulation over several `backward` calls still works.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{shape_str, Error, Result};
use crate::gpu::lock;
use crate::tensor::Tensor;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` without recording anything on the tape (inference, optimizer updates, evaluation).
///
/// ```
/// use timeloom::{no_grad, Device, Tensor};
/// let w = Tensor::from_slice(&Device::Cpu, &[2.0], &[1])?.requires_grad();
/// let y = no_grad(|| w.square())?;
/// assert!(!y.tracks_grad());
/// # Ok::<(), timeloom::Error>(())
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// Whether ops on this thread record onto the tape now.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A parameter: where its gradient accumulates.
pub(crate) struct Leaf {
    grad: Mutex<Option<Tensor>>,
    /// Whether `grad` holds this step's gradient (false after `zero_grad`).
    fresh: AtomicBool,
}

pub(crate) type BackwardFn = Box<dyn Fn(&mut Grads<'_>, &Tensor) -> Result<()> + Send + Sync>;

/// An op's record: its inputs and how to turn the output's gradient into theirs.
pub(crate) struct Node {
    id: u64,
    name: &'static str,
    inputs: Vec<Tensor>,
    backward: BackwardFn,
}

#[derive(Clone)]
pub(crate) enum Autograd {
    Leaf(Arc<Leaf>),
    Node(Arc<Node>),
}

/// Records `out` as the result of an op on `inputs`, when any of them tracks gradients and the
/// tape is on. The closure must capture detached tensors only (else the graph would own itself).
pub(crate) fn record(
    mut out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&mut Grads<'_>, &Tensor) -> Result<()> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.autograd.is_some()) {
        return out;
    }
    out.autograd = Some(Autograd::Node(Arc::new(Node {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name,
        inputs: inputs.iter().map(|&t| t.clone()).collect(),
        backward: Box::new(backward),
    })));
    out
}

/// What a backward closure uses to hand gradients to its op's inputs.
pub(crate) struct Grads<'a> {
    inputs: &'a [Tensor],
    pending: &'a mut HashMap<u64, Tensor>,
}

/// A gradient term that an op can write straight into a buffer: the tape asks for it either
/// accumulated into a parameter's gradient or as a fresh tensor. Ops implement it (a matmul
/// folds the add into its β), so the tape needs to know no op.
pub(crate) trait GradTerm {
    /// buf = term + β·buf.
    fn accumulate_into(self, buf: &Tensor, beta: f32) -> Result<()>;
    /// The term as a new tensor.
    fn compute(self) -> Result<Tensor>;
}

impl Grads<'_> {
    /// Whether input `i` needs a gradient.
    pub fn wants(&self, i: usize) -> bool {
        self.inputs[i].autograd.is_some()
    }

    /// Adds `g` to input `i`'s gradient.
    pub fn add(&mut self, i: usize, g: Tensor) -> Result<()> {
        let input = &self.inputs[i];
        if g.shape() != input.shape() {
            return Err(Error::Gpu {
                message: format!(
                    "internal: a backward produced {} for an input of {}",
                    shape_str(g.shape()),
                    shape_str(input.shape())
                ),
            });
        }
        match &input.autograd {
            None => Ok(()),
            Some(Autograd::Node(n)) => {
                let sum = match self.pending.remove(&n.id) {
                    Some(prev) => prev.add(&g)?,
                    None => g,
                };
                self.pending.insert(n.id, sum);
                Ok(())
            }
            Some(Autograd::Leaf(leaf)) => leaf.accumulate(input, &g),
        }
    }

    /// Adds a zero gradient to every input that wants one: an op over an empty batch
    /// contributes nothing, but its parameters still get a gradient, as in PyTorch, so that
    /// `grad()` is `Some` after every backward that reached them.
    pub fn add_zeros_to_all(&mut self) -> Result<()> {
        for i in 0..self.inputs.len() {
            if self.wants(i) {
                let input = &self.inputs[i];
                let zeros = Tensor::zeros(&input.device(), input.shape())?;
                self.add(i, zeros)?;
            }
        }
        Ok(())
    }

    /// Adds the term `m` (a product, say) to input `i`'s gradient; into a parameter's buffer
    /// directly, with β = 1 (or β = 0 for the first gradient of a step): no extra add kernel.
    pub fn add_term(&mut self, i: usize, m: impl GradTerm) -> Result<()> {
        match &self.inputs[i].autograd {
            Some(Autograd::Leaf(leaf)) => {
                let input = &self.inputs[i];
                let mut slot = lock(&leaf.grad);
                let buf = leaf.buffer(&mut slot, input)?;
                let beta = if leaf.fresh.load(Ordering::Relaxed) {
                    1.0
                } else {
                    0.0
                };
                m.accumulate_into(&buf, beta)?;
                leaf.fresh.store(true, Ordering::Relaxed);
                Ok(())
            }
            Some(Autograd::Node(_)) => {
                let g = m.compute()?;
                self.add(i, g)
            }
            None => Ok(()),
        }
    }
}

impl Leaf {
    /// The gradient buffer, created (uninitialised: the first write overwrites) on first use.
    fn buffer(&self, slot: &mut Option<Tensor>, param: &Tensor) -> Result<Tensor> {
        if let Some(b) = slot.as_ref() {
            if b.device().same(&param.device()) {
                return Ok(b.clone());
            }
        }
        let b = param.detach().output_like(param.shape(), "grad")?;
        *slot = Some(b.clone());
        Ok(b)
    }

    fn accumulate(&self, param: &Tensor, g: &Tensor) -> Result<()> {
        let mut slot = lock(&self.grad);
        let buf = self.buffer(&mut slot, param)?;
        let beta = if self.fresh.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        };
        buf.axpy_from(g, 1.0, beta)?;
        self.fresh.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Tensor {
    /// A handle to the same storage that is a parameter: ops on it record onto the tape and
    /// `backward` leaves its gradient in [`Tensor::grad`].
    pub fn requires_grad(&self) -> Tensor {
        let mut t = self.detach();
        t.autograd = Some(Autograd::Leaf(Arc::new(Leaf {
            grad: Mutex::new(None),
            fresh: AtomicBool::new(false),
        })));
        t
    }

    /// Reads the tensor back and returns `Error::NonFinite` naming `what`, the first NaN or
    /// infinite element and the op that produced the tensor. Opt-in: it waits for the device, so
    /// call it on a loss or a gradient when debugging, not every step.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        let values = self.read_blocking()?;
        match values.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(index) => Err(Error::NonFinite {
                what: what.to_string(),
                index,
                value: values[index],
                producer: match &self.autograd {
                    Some(Autograd::Node(n)) => n.name.to_string(),
                    Some(Autograd::Leaf(_)) => "parameter".into(),
                    None => "input".into(),
                },
            }),
        }
    }

    /// Whether this tensor is a parameter or the result of ops on one.
    pub fn tracks_grad(&self) -> bool {
        self.autograd.is_some()
    }

    /// Whether this tensor is a parameter (made by [`Tensor::requires_grad`]).
    pub fn is_leaf(&self) -> bool {
        matches!(self.autograd, Some(Autograd::Leaf(_)))
    }

    /// The same storage, cut off the tape.
    pub fn detach(&self) -> Tensor {
        let mut t = self.clone();
        t.autograd = None;
        t
    }

    /// This parameter's gradient from the `backward` calls since the last `zero_grad`; `None`
    /// for tensors that are not parameters, or when no gradient reached it.
    pub fn grad(&self) -> Option<Tensor> {
        match &self.autograd {
            Some(Autograd::Leaf(l)) if l.fresh.load(Ordering::Relaxed) => lock(&l.grad).clone(),
            _ => None,
        }
    }

    /// Forgets this parameter's gradient without dispatching anything: the next `backward`
    /// overwrites the buffer instead of adding to it.
    pub fn zero_grad(&self) {
        if let Some(Autograd::Leaf(l)) = &self.autograd {
            l.fresh.store(false, Ordering::Relaxed);
        }
    }

    /// Back-propagates from this scalar: every parameter it depends on receives d self / d param
    /// in its [`Tensor::grad`]. Records the backward kernels; submits nothing.
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::ShapeMismatch {
                op: "backward",
                arg: "self",
                expected: "a scalar (one element); call `backward_with` with an explicit gradient"
                    .into(),
                got: shape_str(self.shape()),
            });
        }
        let seed = Tensor::full(&self.device(), self.shape(), 1.0)?;
        self.backward_with(&seed)
    }

    /// Back-propagates `grad` (the gradient of some scalar with respect to `self`).
    pub fn backward_with(&self, grad: &Tensor) -> Result<()> {
        crate::tensor::same_device("backward_with", "grad", self, grad)?;
        if grad.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "backward_with",
                arg: "grad",
                expected: shape_str(self.shape()),
                got: shape_str(grad.shape()),
            });
        }
        let node = match &self.autograd {
            None => {
                return Err(Error::InvalidArgument {
                    op: "backward",
                    message: "this tensor does not depend on any parameter; mark parameters with \
                              `requires_grad()`"
                        .into(),
                })
            }
            Some(Autograd::Leaf(l)) => return l.accumulate(self, grad),
            Some(Autograd::Node(n)) => n.clone(),
        };
        // Post-order DFS without recursion: a long unrolled graph must not overflow the stack.
        let mut order: Vec<Arc<Node>> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack: Vec<(Arc<Node>, bool)> = vec![(node.clone(), false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                order.push(n);
                continue;
            }
            if !seen.insert(n.id) {
                continue;
            }
            stack.push((n.clone(), true));
            for input in &n.inputs {
                if let Some(Autograd::Node(child)) = &input.autograd {
                    if !seen.contains(&child.id) {
                        stack.push((child.clone(), false));
                    }
                }
            }
        }
        let mut pending: HashMap<u64, Tensor> = HashMap::new();
        pending.insert(node.id, grad.detach());
        no_grad(|| {
            for n in order.iter().rev() {
                let Some(dy) = pending.remove(&n.id) else {
                    continue;
                };
                let mut grads = Grads {
                    inputs: &n.inputs,
                    pending: &mut pending,
                };
                (n.backward)(&mut grads, &dy).map_err(|e| match e {
                    Error::Gpu { message } => Error::Gpu {
                        message: format!("in the backward of {}: {message}", n.name),
                    },
                    other => other,
                })?;
            }
            Ok(())
        })
    }
}
