//! Running the real binary as a user does, one command at a time.

use std::path::Path;
use std::process::{Command, Output};

/// Run `swarmpilot` with `args` in `dir` (where a `swarmpilot.toml` is picked up if present).
pub fn swarmpilot_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("swarmpilot runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
