//! Command-line pieces the examples and the bench share, for each one's own clap parser:
//! parsing that lists every flag on an unknown one, `--device` (flattened in), a parser for
//! counts that must be at least 1, output folders, and a `main` that prints errors as sentences.

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

/// `--device auto|gpu|cpu`.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Where to run: a hardware GPU if there is one, else the CPU path (auto); the best GPU
    /// adapter, software ones such as lavapipe included (gpu); or the CPU twins of the kernels
    /// (cpu).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// The values of `--device`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU when wgpu finds one, else the CPU path (`Device::auto`).
    Auto,
    /// The best GPU adapter, a software one included (`Device::gpu`).
    Gpu,
    /// The CPU twins (`Device::Cpu`).
    Cpu,
}

impl DeviceArgs {
    /// Opens the chosen device and prints one line saying which and why (on stderr, so a
    /// program's own output stays clean). An error says what to install when `gpu` finds none.
    pub fn open(&self) -> timeloom::Result<Device> {
        let (device, why) = match self.device {
            DeviceChoice::Auto => {
                let chosen = Device::auto();
                (chosen.device, chosen.why)
            }
            DeviceChoice::Gpu => {
                let d = Device::gpu()?;
                (d, "asked for with --device gpu".to_string())
            }
            DeviceChoice::Cpu => (Device::Cpu, "asked for with --device cpu".to_string()),
        };
        eprintln!("device: {device} ({why})");
        Ok(device)
    }
}

/// Runs `body` as a program's `main`: an error prints as its sentence (`Display`: what went
/// wrong and what to do), not as a Debug struct, and the program exits with status 1.
pub fn main<E: std::fmt::Display>(body: impl FnOnce() -> Result<(), E>) {
    if let Err(e) = body() {
        eprintln!("error: {e}");
        std::process::exit(1);
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
