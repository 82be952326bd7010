//! The benchmarks' command lines: flags read one at a time, `--help`, and every mistake
//! answered with the usage and exit code 2.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A benchmark's arguments, read flag by flag.
pub struct Args {
    /// The program's name, for error messages (`bench-error-tracker`).
    name: &'static str,
    /// The usage text printed by `--help` and after an error.
    usage: &'static str,
    args: std::iter::Skip<std::env::Args>,
}

impl Args {
    /// The process's arguments after the program name.
    pub fn new(name: &'static str, usage: &'static str) -> Args {
        Args {
            name,
            usage,
            args: std::env::args().skip(1),
        }
    }

    /// The next flag; `--help` (or `-h`) prints the usage and exits 0.
    pub fn next_flag(&mut self) -> Option<String> {
        let flag = self.args.next()?;
        if flag == "--help" || flag == "-h" {
            println!("{}", self.usage);
            std::process::exit(0);
        }
        Some(flag)
    }

    /// The value after `flag`.
    pub fn value(&mut self, flag: &str) -> String {
        match self.args.next() {
            Some(value) => value,
            None => self.error(&format!("{flag} needs a value")),
        }
    }

    /// The whole number after `flag`.
    pub fn number<T: FromStr>(&mut self, flag: &str) -> T {
        let raw = self.value(flag);
        match raw.parse() {
            Ok(number) => number,
            Err(_) => self.error(&format!("{flag} needs a whole number, got {raw:?}")),
        }
    }

    /// The whole number of seconds after `flag`.
    pub fn seconds(&mut self, flag: &str) -> Duration {
        Duration::from_secs(self.number(flag))
    }

    /// A flag the program does not know.
    pub fn unknown(&self, flag: &str) -> ! {
        self.error(&format!("unknown argument {flag:?}"))
    }

    /// `path` made absolute (the services run in temporary working directories), or the
    /// usage with `build`, the command that makes the binary.
    pub fn binary(&self, path: &Path, build: &str) -> PathBuf {
        match std::fs::canonicalize(path) {
            Ok(found) if found.is_file() => found,
            _ => self.error(&format!(
                "{} not found; run `{build}` first or pass its path",
                path.display()
            )),
        }
    }

    /// `message` and the usage on stderr, exit code 2.
    pub fn error(&self, message: &str) -> ! {
        eprintln!("{}: {message}\n\n{}", self.name, self.usage);
        std::process::exit(2);
    }
}
