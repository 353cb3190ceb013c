//! Command-line plumbing the examples share: `--flag value` pairs, typed values, the device
//! choice and output folders. No argument-parsing crate: the examples take a handful of flags.

#![allow(dead_code)]

use std::path::Path;
use std::str::FromStr;

use timeloom::Device;

/// The command line as (flag, value) pairs; a flag given last without a value gets "".
pub fn flags() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        out.push((flag, value));
    }
    out
}

/// Parses `value` into `slot`; exits with a message naming `flag` when it does not parse.
pub fn set<T: FromStr>(slot: &mut T, flag: &str, value: &str) {
    match value.parse() {
        Ok(v) => *slot = v,
        Err(_) => {
            eprintln!("{flag}: cannot use `{value}` here");
            std::process::exit(2);
        }
    }
}

/// Parses a count that must be at least 1 (a batch size, a width, a beam) into `slot`; exits
/// with a message naming `flag` for 0 or for what does not parse.
pub fn set_count(slot: &mut usize, flag: &str, value: &str) {
    match value.parse::<usize>() {
        Ok(v) if v >= 1 => *slot = v,
        _ => {
            eprintln!("{flag}: `{value}` is not a count of at least 1");
            std::process::exit(2);
        }
    }
}

/// Exits for a flag the example does not know, pointing at the file that lists its flags.
pub fn unknown(flag: &str, file: &str) -> ! {
    eprintln!("unknown argument {flag}; see the top of {file}");
    std::process::exit(2);
}

/// `cpu` for the CPU path, anything else for the best GPU adapter.
pub fn device(name: &str) -> timeloom::Result<Device> {
    if name == "cpu" {
        Ok(Device::Cpu)
    } else {
        Device::gpu()
    }
}

/// Creates `dir` and its parents, as a typed error.
pub fn ensure_dir(dir: &Path) -> timeloom::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| timeloom::Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })
}
