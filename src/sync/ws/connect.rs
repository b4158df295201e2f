//! Opening a WebSocket: URL and options checked up front, then on the I/O thread a blocking
//! TCP connect, TLS (rustls, ring) and HTTP upgrade, bounded by the connect timeout, before the
//! socket turns nonblocking for the poll loop. Blocking here keeps the handshake code simple;
//! it only ever holds up the connection's own I/O thread.

use super::codec::{MAX_CHANNEL_ID_BYTES, MAX_PAYLOAD_BYTES, SUBPROTOCOL};
use crate::error::{Error, Result};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, HandshakeError, WebSocket};

/// An open client WebSocket.
pub(super) type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Where and how to connect; checked once, used for every (re)connection.
pub(super) struct Target {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Multiplexed: ask for the `tinybase` subprotocol (a legacy client must not, 7.4).
    mux: bool,
    tls: Option<Arc<ClientConfig>>,
    host: String,
    port: u16,
}

fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidValue(format!("{what}: {e}"))
}

impl Target {
    /// Checks the URL (ws:// or wss:// with a host), the headers and the CA file.
    pub(super) fn new(url: &str, headers: &[(String, String)], mux: bool, ca_file: Option<&Path>) -> Result<Target> {
        let request = url.into_client_request().map_err(|e| bad("invalid WebSocket URL", e))?;
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(bad("invalid WebSocket URL", format!("{url:?} is not ws:// or wss://"))),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("invalid WebSocket URL", "no host"))?;
        // An IPv6 literal keeps its brackets in the URI, not in an address.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let headers = headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad("invalid header name", e))?;
                let value = HeaderValue::from_str(v).map_err(|e| bad("invalid header value", e))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>>>()?;
        let tls = if tls { Some(tls_config(ca_file)?) } else { None };
        Ok(Target { url: url.to_string(), headers, mux, tls, host, port })
    }

    /// Resolves the host and opens a TCP connection before `deadline`. Name resolution and
    /// connect(2) cannot be interrupted, so they run on a helper thread: a destroy meanwhile
    /// returns at once and leaves that thread to end by itself (by the deadline at the latest),
    /// owning nothing but the socket it may still get.
    fn tcp_connect(&self, deadline: Instant, stop: &AtomicBool) -> std::result::Result<TcpStream, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (host, port) = (self.host.clone(), self.port);
        std::thread::Builder::new()
            .name("tinybase-ws-connect".into())
            .spawn(move || {
                let remaining = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                let result = (|| {
                    let addrs = (host.as_str(), port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
                    let mut error = format!("no address for {host}");
                    for addr in addrs {
                        match TcpStream::connect_timeout(&addr, remaining()) {
                            Ok(s) => return Ok(s),
                            Err(e) => error = format!("cannot connect to {addr}: {e}"),
                        }
                    }
                    Err(error)
                })();
                let _ = tx.send(result);
            })
            .map_err(|e| format!("cannot start a connect thread: {e}"))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => return result,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Err("the connect thread failed".into()),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) {
                        return Err("destroyed while connecting".into());
                    }
                    if Instant::now() >= deadline + Duration::from_millis(100) {
                        return Err("connect timed out".into());
                    }
                }
            }
        }
    }

    /// Multiplexed (subprotocol `tinybase`).
    pub(super) fn is_mux(&self) -> bool {
        self.mux
    }

    fn request(&self) -> std::result::Result<Request, String> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| e.to_string())?;
        let h = request.headers_mut();
        for (k, v) in &self.headers {
            h.append(k.clone(), v.clone());
        }
        if self.mux {
            h.insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL));
        }
        Ok(request)
    }

    /// Connects and upgrades within `timeout`, giving up early when `stop` is set (destroy);
    /// the socket returned is nonblocking. The error explains the failure.
    pub(super) fn connect(&self, timeout: Duration, stop: &AtomicBool) -> std::result::Result<Socket, String> {
        let deadline = Instant::now() + timeout;
        let remaining = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let request = self.request()?;
        let stream = self.tcp_connect(deadline, stop)?;
        // Small frames go out at once: latency matters more than packet count here.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        // Short read slices, so a destroy during a handshake that never completes waits at most
        // one slice (the handshake resumes after each).
        stream.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        stream.set_write_timeout(Some(remaining())).map_err(|e| e.to_string())?;
        let connector = match &self.tls {
            Some(config) => Connector::Rustls(config.clone()),
            None => Connector::Plain,
        };
        let mut attempt = tungstenite::client_tls_with_config(request, stream, Some(ws_config()), Some(connector));
        let socket = loop {
            match attempt {
                Ok((socket, _response)) => break socket,
                Err(HandshakeError::Interrupted(mid)) => {
                    if stop.load(Ordering::Acquire) {
                        return Err("destroyed while connecting".into());
                    }
                    if Instant::now() >= deadline {
                        return Err(format!("no WebSocket handshake within {timeout:?}"));
                    }
                    attempt = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => return Err(format!("WebSocket handshake failed: {e}")),
            }
        };
        let tcp = tcp_of(&socket).ok_or("unexpected stream type")?;
        tcp.set_read_timeout(None).map_err(|e| e.to_string())?;
        tcp.set_write_timeout(None).map_err(|e| e.to_string())?;
        tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(socket)
    }
}

/// The TCP stream under a socket (for its descriptor and flags).
pub(super) fn tcp_of(socket: &Socket) -> Option<&TcpStream> {
    match socket.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(&s.sock),
        _ => None,
    }
}

/// Frames up to TinyBase's payload limit plus the multiplex envelope; a larger one is an
/// overload (7.3). The write buffer may hold one whole payload beyond the usual batch: more
/// is backpressure (our queue keeps it, bounded).
fn ws_config() -> WebSocketConfig {
    let max = MAX_PAYLOAD_BYTES + MAX_CHANNEL_ID_BYTES + 16;
    // tungstenite zeroes its whole read buffer on each read: 8 KiB (not its 128 KiB default) keeps
    // small frames cheap; large messages still accumulate beyond it.
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .max_write_buffer_size(2 * max)
}

/// Mozilla's roots (webpki-roots), plus the certificates of `ca_file` (PEM) for private CAs.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let what = format!("CA file {}", path.display());
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&what, e))? {
            roots.add(cert.map_err(|e| bad(&what, e))?).map_err(|e| bad(&what, e))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(&what, "no certificate in it"));
        }
    }
    // The ring provider explicitly: no process-wide default to install or race on.
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
