//! Generates the C header from `src/ffi/` with the pinned cbindgen, into `$OUT_DIR/tinybase.h`
//! only: a build never writes into the source tree (read-only and vendored builds work).
//!
//! `include/tinybase.h` is the committed copy. `scripts/check-header.sh` fails when it differs
//! from what this script generates; `scripts/check-header.sh --update` refreshes it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let version = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("version");
    config.after_includes = Some(format!(
        "\n/** This header's library version (matches Cargo.toml and tb_version()). */\n\
         #define TB_VERSION_MAJOR {}\n#define TB_VERSION_MINOR {}\n#define TB_VERSION_PATCH {}\n\
         #define TB_VERSION_STRING \"{}\"\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("version"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen could not generate the header");
    bindings.write_to_file(out_dir.join("tinybase.h"));
}
