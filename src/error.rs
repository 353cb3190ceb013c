//! The one error type of timeloom. Every fallible public call returns `Result<_, Error>`; a message
//! names the op and the argument, gives the expected and actual values, and says what to do.

use std::path::PathBuf;

/// Everything that can go wrong in timeloom, as a value the caller can match on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument's shape does not fit the op.
    #[error("{op}: `{arg}` has shape {got}; expected {expected}")]
    ShapeMismatch {
        /// The op that checked the shape, e.g. `"matmul"`.
        op: &'static str,
        /// The argument whose shape is wrong, e.g. `"b"`.
        arg: &'static str,
        /// What the op expected, in words and numbers.
        expected: String,
        /// The shape that arrived.
        got: String,
    },

    /// An argument's value is outside what the op accepts (a zero-size dimension, an axis out of
    /// range, a tensor that aliases the output).
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The op that rejected the argument.
        op: &'static str,
        /// What is wrong and what to do.
        message: String,
    },

    /// A tensor or a dispatch exceeds a limit of the device.
    #[error(
        "{op}: {what} needs {bytes} bytes, over the device's `{limit_name}` of {limit} bytes; \
         split the work into smaller pieces, or create the Gpu on an adapter with a larger limit"
    )]
    TooLarge {
        /// The op that would have exceeded the limit.
        op: &'static str,
        /// What was too large, e.g. "tensor [40000, 1000]".
        what: String,
        /// The size asked for.
        bytes: u64,
        /// The device's limit.
        limit: u64,
        /// The wgpu name of the limit, e.g. `max_storage_buffer_binding_size`.
        limit_name: &'static str,
    },

    /// The op, or this combination of arguments, is not supported on this device.
    #[error("{op}: {message}")]
    Unsupported {
        /// The op.
        op: &'static str,
        /// What is unsupported and what to use instead.
        message: String,
    },

    /// The operands live on different devices.
    #[error(
        "{op}: `{arg}` lives on {got} but the op runs on {expected}; move it with `Tensor::to_device`"
    )]
    DeviceMismatch {
        /// The op.
        op: &'static str,
        /// The argument on the wrong device.
        arg: &'static str,
        /// The device of the first operand.
        expected: String,
        /// The device of this operand.
        got: String,
    },

    /// wgpu found no adapter that timeloom can use.
    #[error("no GPU adapter: {message}")]
    NoAdapter {
        /// What was searched and what to install.
        message: String,
    },

    /// The device was lost (driver reset, device destroyed). Tensors on it are gone.
    #[error("the GPU device was lost ({reason}); create a new `Gpu` and upload the tensors again")]
    DeviceLost {
        /// The reason the driver gave.
        reason: String,
    },

    /// A WGSL kernel failed to compile into a pipeline on this device.
    #[error("kernel `{kernel}` failed to compile on this device: {message}")]
    ShaderCompile {
        /// The kernel name, as in `shaders/<kernel>.wgsl`.
        kernel: &'static str,
        /// The compiler's message.
        message: String,
    },

    /// The device ran out of memory.
    #[error("{op}: the device is out of memory allocating {bytes} bytes; free tensors, call `Gpu::trim_pool`, or use smaller batches")]
    OutOfMemory {
        /// The op that allocated.
        op: &'static str,
        /// The size of the failed allocation.
        bytes: u64,
    },

    /// wgpu reported an error that timeloom did not expect (a bug in timeloom, or in the driver).
    #[error("GPU error: {message}")]
    Gpu {
        /// wgpu's message.
        message: String,
    },

    /// A value that should be finite is NaN or infinite (from [`Tensor::check_finite`](crate::Tensor::check_finite)).
    #[error("{what}: element {index} is {value} (produced by {producer}); lower the learning rate, clip gradients, or check the inputs")]
    NonFinite {
        /// What was checked, as the caller named it.
        what: String,
        /// The first non-finite element, row-major.
        index: usize,
        /// Its value.
        value: f32,
        /// The op whose output it is (`parameter` for a parameter, `input` for anything else).
        producer: String,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file or buffer does not have the format the loader expects.
    #[error("{what}: {message}")]
    Format {
        /// The file or key that is malformed.
        what: String,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with timeloom's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a shape as `[a, b, c]` for messages.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}
