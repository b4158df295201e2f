//! Generates the C header `include/tinybase.h` from `src/ffi/` with the pinned cbindgen.
//!
//! The header is always written to `$OUT_DIR/tinybase.h`; `include/tinybase.h` (the committed
//! copy) is updated when it differs. `scripts/check-header.sh` compares the two and fails when
//! the committed header is stale.

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
    let generated = out_dir.join("tinybase.h");
    bindings.write_to_file(&generated);
    let text = std::fs::read(&generated).expect("generated header");
    let committed = crate_dir.join("include/tinybase.h");
    if std::fs::read(&committed).ok().as_deref() != Some(text.as_slice()) {
        std::fs::create_dir_all(crate_dir.join("include")).expect("include/");
        std::fs::write(&committed, &text).expect("include/tinybase.h");
    }
}
