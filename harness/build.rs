//! With the `libtorch` feature, links the harness's binaries, tests and benches so that
//! they use the libtorch adapter-libtorch was built against, with nothing set by hand:
//!
//! - an rpath to its directory (adapter-libtorch's build script publishes it as
//!   `DEP_SERVEBENCH_LIBTORCH_LIBDIR`), so they start without `LD_LIBRARY_PATH`;
//! - `libtorch_cuda.so` as a needed library when the wheel has it. Nothing calls it
//!   directly, so the linker's `--as-needed` would drop it, and libtorch would then
//!   see no CUDA device even on a GPU host.
//!
//! Link arguments of a dependency's build script do not reach this package's
//! binaries, hence this script.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_SERVEBENCH_LIBTORCH_LIBDIR");
    if let Ok(dir) = std::env::var("DEP_SERVEBENCH_LIBTORCH_LIBDIR") {
        // adapter-libtorch is linked (by the `libtorch` feature, or by the cfg that
        // .cargo/config.toml passes): the code asks one cfg either way.
        println!("cargo:rustc-cfg=servebench_libtorch");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        let cuda = Path::new(&dir).join("libtorch_cuda.so");
        if cuda.is_file() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg={}", cuda.display());
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
