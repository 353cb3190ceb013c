//! Command-line pieces the examples and the bench share, for each one's own clap parser:
//! parsing that lists every flag on an unknown one, `--device` (flattened in), a parser for
//! counts that must be at least 1, and output folders.

#![allow(dead_code)]

use std::path::Path;

use timeloom::Device;

/// Parses the command line into `T`. `--help` prints the flags; an unknown flag (or a stray
/// argument) is an error followed by the list of valid flags, since clap alone names at most the
/// nearest one; any error exits with status 2.
pub fn parse<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|e| {
        if e.kind() == clap::error::ErrorKind::UnknownArgument {
            let _ = e.print();
            eprintln!();
            let mut command = T::command();
            // The usage line names the program as it was run, not the crate.
            if let Some(bin) = std::env::args().next() {
                let stem = Path::new(&bin)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned());
                if let Some(stem) = stem {
                    command = command.bin_name(stem);
                }
            }
            let _ = command.write_help(&mut std::io::stderr());
            std::process::exit(2);
        }
        e.exit()
    })
}

/// `--device gpu|cpu`.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Where to run: the best GPU adapter, or the CPU twins of the kernels.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Gpu)]
    pub device: DeviceChoice,
}

/// The values of `--device`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The best GPU adapter (`Device::gpu`).
    Gpu,
    /// The CPU twins (`Device::Cpu`).
    Cpu,
}

impl DeviceArgs {
    /// Opens the chosen device: an error that says what to install when there is no GPU.
    pub fn open(&self) -> timeloom::Result<Device> {
        match self.device {
            DeviceChoice::Gpu => Device::gpu(),
            DeviceChoice::Cpu => Ok(Device::Cpu),
        }
    }
}

/// Parses a count that must be at least 1 (a batch size, a width, a beam).
pub fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a count of at least 1")),
    }
}

/// Creates `dir` and its parents, as a typed error.
pub fn ensure_dir(dir: &Path) -> timeloom::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| timeloom::Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })
}
