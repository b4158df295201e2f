//! The `tinybase-server` binary (minimal until the ops branch's CLI is merged).

use std::path::PathBuf;
use tinybase_server::{Server, ServerOptions};

#[tokio::main]
async fn main() {
    let mut options = ServerOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--listen", Some(v)) => options.listen = v.parse().unwrap_or_else(|e| fail(&format!("--listen {v}: {e}"))),
            ("--data", Some(v)) => options.data_dir = Some(PathBuf::from(v)),
            ("--fragment-size", Some(v)) => options.fragment_size = v.parse().ok(),
            _ => fail(&format!("unknown or incomplete option {arg}")),
        }
    }
    let handle = Server::start(options).await.unwrap_or_else(|e| fail(&e.to_string()));
    println!("listening on {}", handle.local_addr());
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
}

fn fail(why: &str) -> ! {
    eprintln!("tinybase-server: {why}");
    std::process::exit(2);
}
