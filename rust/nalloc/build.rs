//! Build script of the nalloc crate: only the benchmark needs it. `benches/prover.rs` compares
//! against mimalloc when Debian's libmimalloc is installed; this finds it and sets the
//! `have_mimalloc` cfg, so the benchmark builds (and skips mimalloc) where it is not.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(have_mimalloc)");
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ];
    for dir in dirs {
        let lib = Path::new(dir).join("libmimalloc.so");
        println!("cargo:rerun-if-changed={}", lib.display());
        if lib.exists() {
            println!("cargo:rustc-cfg=have_mimalloc");
            println!("cargo:rustc-link-search=native={dir}");
            return;
        }
    }
}
