//! The `tinybase-server` binary in a test: started on 127.0.0.1 (port 0) with the test's flags,
//! its stderr kept, killed on drop whatever happens. Shared by ops.rs and persist.rs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tinybase_server::metrics::parse_exposition;

pub const BIN: &str = env!("CARGO_BIN_EXE_tinybase-server");
/// How long anything may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running `tinybase-server`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the binary with `args` plus `--listen 127.0.0.1:0` and waits for its `listening` line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tinybase-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        // Drained continuously so a chatty server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (lines, line) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(text).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            stderr,
        };
        let text = line
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no listening line; stderr: {}", server.stderr()));
        let addr = text
            .split_once("listening on ws://")
            .map(|(_, addr)| addr.trim().to_string());
        server.addr = addr
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {text:?}"));
        server
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}/{path_and_query}", self.addr)
    }

    /// An HTTP GET: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    /// The parsed `/metrics`.
    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    /// Waits until `n` connections are open. The server counts a connection as it joins it to
    /// its room, which happens just after the client sees its handshake answered: a broadcast
    /// sent before that can miss the newcomer.
    pub fn wait_joined(&self, n: usize) {
        self.wait_metric("tinybase_connections", |open| open == n as f64);
    }

    /// Waits until `/metrics` shows `series` at a value `wanted` accepts.
    pub fn wait_metric(&self, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.metrics().get(series).copied().unwrap_or(f64::NAN);
            if wanted(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {value}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    (status, body)
}

