use clap::Parser;
use swarmpilot::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swarmpilot: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
