//! The `tinybase-server` binary (a minimal CLI until the ops branch's is merged).

use std::path::PathBuf;
use std::time::Duration;
use tinybase_server::{Server, ServerOptions};

#[tokio::main]
async fn main() {
    let mut options = ServerOptions::default();
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, v: &str| -> f64 { v.parse().unwrap_or_else(|_| fail(&format!("{flag} {v}: not a number"))) };
    while let Some(arg) = args.next() {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), args.next()),
        };
        let Some(v) = value else { fail(&format!("{flag} needs a value")) };
        match flag.as_str() {
            "--listen" => options.listen = v.parse().unwrap_or_else(|e| fail(&format!("--listen {v}: {e}"))),
            "--data" => options.data_dir = Some(PathBuf::from(v)),
            "--room-idle-seconds" => options.room_idle = Duration::from_secs_f64(number(&flag, &v)),
            "--max-clients" => options.max_clients = number(&flag, &v) as usize,
            "--max-rooms" => options.max_rooms = number(&flag, &v) as usize,
            "--max-connections-per-ip" => options.max_connections_per_ip = number(&flag, &v) as usize,
            "--max-message-bytes" => options.max_message_bytes = number(&flag, &v) as usize,
            "--request-timeout-seconds" => options.request_timeout = Duration::from_secs_f64(number(&flag, &v)),
            "--fragment-size" => options.fragment_size = Some(number(&flag, &v) as usize),
            "--jwt-secret-file" => {
                let secret = std::fs::read(&v).unwrap_or_else(|e| fail(&format!("--jwt-secret-file {v}: {e}")));
                options.auth = Some(tinybase_server::jwt::jwt_auth(secret.trim_ascii().to_vec()));
            }
            _ => fail(&format!("unknown option {flag}")),
        }
    }
    let handle = Server::start(options).await.unwrap_or_else(|e| {
        eprintln!("tinybase-server: {e}");
        std::process::exit(1)
    });
    println!("listening on {}", handle.local_addr());
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
}

fn fail(why: &str) -> ! {
    eprintln!("tinybase-server: {why}");
    std::process::exit(2);
}
