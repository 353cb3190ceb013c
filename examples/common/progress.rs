//! Progress for the long examples: an `indicatif` bar (position, rate, ETA, a message) on a
//! terminal; elsewhere (a pipe, a file, a CI log) a plain line every twentieth of the run, so a
//! log reads as lines and not as one line of carriage returns.

#![allow(dead_code)]

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A run of `total` steps of some unit ("steps", "batches").
pub struct Progress {
    bar: ProgressBar,
    /// Plain lines instead of a bar: every `every` steps, and the last.
    every: Option<u64>,
    total: u64,
    unit: &'static str,
}

impl Progress {
    /// Starts at `start` of `total` (a resumed run starts part-way).
    pub fn new(start: u64, total: u64, unit: &'static str) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty {
            ProgressBar::new(total)
        } else {
            // Hidden, but still counting: its rate and ETA feed the plain lines.
            ProgressBar::hidden()
        };
        bar.set_length(total);
        bar.set_position(start);
        bar.reset_eta();
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{bar:30}} {{pos:>6}}/{{len}} {unit}  {{per_sec:>10}}  ETA {{eta:<4}}  {{msg}}"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        if tty {
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        Progress {
            bar,
            every: (!tty).then_some((total / 20).max(1)),
            total,
            unit,
        }
    }

    /// Moves to step `pos` with `msg` (the loss, say): redraws the bar, or prints a plain line
    /// when one is due.
    pub fn set(&self, pos: u64, msg: String) {
        self.bar.set_position(pos);
        if let Some(every) = self.every {
            if pos.is_multiple_of(every) || pos == self.total {
                eprintln!(
                    "{pos}/{} {}  {:.1} {}/s  ETA {}  {msg}",
                    self.total,
                    self.unit,
                    self.bar.per_sec(),
                    self.unit,
                    indicatif::HumanDuration(self.bar.eta())
                );
            }
        }
        self.bar.set_message(msg);
    }

    /// Prints a line of the program's output on stdout (the bar, on stderr, steps aside for it).
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.suspend(|| println!("{}", line.as_ref()));
    }

    /// Removes the bar; what was printed with `println` stays.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
