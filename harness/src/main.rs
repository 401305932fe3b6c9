//! The `harness` binary; everything happens in [`harness::run`].

fn main() -> std::process::ExitCode {
    harness::run(std::env::args_os())
}
