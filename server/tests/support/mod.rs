//! Test helpers: a server running in-process on 127.0.0.1 (stopped on drop, whatever happens)
//! and blocking WebSocket clients with bounded reads.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tinybase_server::{Server, ServerHandle, ServerOptions};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// A server on its own runtime; shut down (gracefully) when dropped.
pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

/// Options for tests: a free port on 127.0.0.1, quiet.
pub fn options() -> ServerOptions {
    ServerOptions { listen: "127.0.0.1:0".parse().unwrap(), log: false, ..ServerOptions::default() }
}

impl TestServer {
    pub fn start(options: ServerOptions) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let handle = rt.block_on(Server::start(options)).expect("server starts");
        let addr = handle.local_addr();
        TestServer { rt, handle: Some(handle), addr }
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    /// Graceful shutdown now.
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), h.shutdown()).await.expect("shutdown in time") });
        }
    }

    /// Waits until the room `path` has `n` clients (a multiplexed client joins on its subscribe;
    /// a legacy one is in by the time its handshake completes).
    pub fn wait_clients(&self, path: &str, n: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        while self.handle().get_client_ids(path).len() != n {
            assert!(Instant::now() < end, "room {path:?} never had {n} clients");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn connect(&self, path: &str) -> Client {
        Client::connect(self.addr, path, None, &[]).expect("connects")
    }

    pub fn connect_mux(&self, path: &str) -> Client {
        let mut c = Client::connect(self.addr, path, Some("tinybase"), &[]).expect("connects");
        c.send("S\n[\"hello0000000000\",-1,[0,1]]");
        assert_eq!(c.text(), "S\n[\"hello0000000000\",-1,[0,1]]", "Hello echo");
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a read got.
#[derive(Debug, PartialEq)]
pub enum Got {
    Text(String),
    Closed(u16, String),
    Nothing,
}

pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

impl Client {
    /// Connects; Err(HTTP status) when the upgrade is refused.
    pub fn connect(addr: SocketAddr, path: &str, protocol: Option<&str>, headers: &[(&str, &str)]) -> Result<Client, u16> {
        let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
        if let Some(p) = protocol {
            request.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        for (k, v) in headers {
            request.headers_mut().insert(tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match tungstenite::client(request, stream) {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => Err(response.status().as_u16()),
            Err(e) => panic!("handshake: {e}"),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next message within `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Got {
        let end = Instant::now() + wait;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Got::Text(t.to_string()),
                Ok(Message::Close(f)) => {
                    return f.map(|f| Got::Closed(u16::from(f.code), f.reason.to_string())).unwrap_or(Got::Closed(1005, String::new()))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if Instant::now() >= end {
                        return Got::Nothing;
                    }
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Got::Closed(1006, String::new()),
                Err(e) => return Got::Closed(1006, e.to_string()),
            }
        }
    }

    /// The next text message (fails the test after 5 s or on a close).
    pub fn text(&mut self) -> String {
        match self.recv_within(Duration::from_secs(5)) {
            Got::Text(t) => t,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next text message that does not come from the server store `S`.
    pub fn text_not_from_s(&mut self) -> String {
        loop {
            let t = self.text();
            let from_s = t.starts_with("S\n") || t.starts_with("M\n") && t.split('\n').nth(2) == Some("S");
            if !from_s {
                return t;
            }
        }
    }

    /// Nothing arrives for a while (messages from `S` aside when `ignore_s`).
    pub fn nothing(&mut self, ignore_s: bool) {
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            match self.recv_within(Duration::from_millis(50)) {
                Got::Nothing => {}
                Got::Text(t) if ignore_s && (t.starts_with("S\n") || t.contains("\nS\n")) => {}
                other => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    /// The close the server sent (within 5 s).
    pub fn closed(&mut self) -> (u16, String) {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Got::Closed(code, reason) = self.recv_within(Duration::from_millis(100)) {
                return (code, reason);
            }
        }
        panic!("not closed");
    }
}

/// The client id a peer's relayed frame carries.
pub fn sender(frame: &str) -> String {
    frame.split('\n').next().unwrap().to_string()
}

pub fn close_code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A unique empty folder under the system's temporary folder.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tinybase-server-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
