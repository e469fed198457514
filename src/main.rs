use clap::Parser;

/// mimalloc: the webhook path is allocation-heavy (JSON in and out) and glibc's malloc topped the
/// profile. See `configure_allocator` for its one setting.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its whole first arena eagerly on Linux, which doubles the resident memory of a
/// process this small. The option must be set before the first allocation, hence a constructor.
#[used]
#[link_section = ".init_array"]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

extern "C" fn configure_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets a plain integer option; mimalloc allows it at any time.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}
use swarmpilot::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("swarmpilot: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
