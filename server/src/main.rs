//! The `tinybase-server` binary.

fn main() {
    eprintln!("tinybase-server: not built yet");
    std::process::exit(2);
}
