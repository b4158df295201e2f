//! The `tinybase-server` binary as an operator runs it: flags, health and metrics, JWT auth,
//! read-only clients, connection limits, SIGTERM. Every test starts its own server process on
//! 127.0.0.1 (port 0) and kills it on drop, whatever happens.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/binary.rs"]
mod binary;

use binary::{Server, BIN, PATIENCE};
use tinybase_server::jwt::{sign_hs256, unix_now};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const SECRET: &str = "ops-test-secret-0123456789abcdef";

/// A scratch folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tinybase-ops-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Socket = WebSocket<TcpStream>;

/// Opens a WebSocket on `url` with extra request headers: the socket, or the HTTP status it was
/// refused with.
fn try_connect(url: &str, headers: &[(&'static str, &str)]) -> Result<Socket, u16> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let uri = request.uri().clone();
    let stream = TcpStream::connect((uri.host().unwrap(), uri.port_u16().unwrap())).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(error) => panic!("handshake to {url}: {error}"),
    }
}

fn connect(url: &str) -> Socket {
    try_connect(url, &[]).unwrap_or_else(|status| panic!("{url} refused with {status}"))
}

/// The next text frame, or `None` if none comes within `wait`.
fn next_text(socket: &mut Socket, wait: Duration) -> Option<String> {
    socket.get_mut().set_read_timeout(Some(wait)).unwrap();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(error) => panic!("read: {error}"),
        }
    }
    None
}

/// Waits up to `wait` for a text frame whose text contains `needle`, skipping others.
fn receive_within(socket: &mut Socket, needle: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
        match next_text(socket, wait) {
            Some(text) if text.contains(needle) => return Some(text),
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// Waits for a text frame whose text contains `needle`, skipping others.
fn receive_containing(socket: &mut Socket, needle: &str) -> Option<String> {
    receive_within(socket, needle, PATIENCE)
}

fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).unwrap();
}

/// A ContentDiff broadcast setting cell pets/fido/species to `value`.
fn write_cell(value: &str) -> String {
    format!(
        r#"{}["{value}-request",3,[[{{"pets":[{{"fido":[{{"species":["{value}","NjEtLV-----FnHIC"]}}]}}]}}],[{{}}],1]]"#,
        "\n"
    )
}

/// The room's content hashes as its server store (`S`) answers them.
fn room_hashes(socket: &mut Socket) -> serde_json::Value {
    let request = format!("hashes-{}", unix_now_nanos());
    send(socket, &format!(r#"S{}["{request}",1,""]"#, "\n"));
    let answer =
        receive_containing(socket, &request).expect("the room store answers GetContentHashes");
    let (from, json) = answer.split_once('\n').unwrap();
    assert_eq!(from, "S");
    let message: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(message[1], 0, "a Response: {answer}");
    message[2].clone()
}

fn unix_now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn token(claims: &str) -> String {
    sign_hs256(SECRET.as_bytes(), claims)
}

/// A token through the binary's own `token` subcommand.
fn cli_token(secret_file: &Path, extra: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("token")
        .arg("--secret-file")
        .arg(secret_file)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn health_and_metrics_move_with_traffic() {
    let server = Server::start(&[]);
    assert_eq!(server.get("/healthz").0, 200);
    let before = server.metrics();
    for family in [
        "connections",
        "connections_total",
        "rooms",
        "messages_in_total",
        "bytes_in_total",
        "messages_out_total",
    ] {
        assert_eq!(before[&format!("tinybase_{family}")], 0.0, "{family}");
    }

    let mut a = connect(&server.url("shop/pets"));
    let mut b = connect(&server.url("shop/pets"));
    server.wait_joined(2);
    send(&mut a, &write_cell("metrics"));
    assert!(
        receive_containing(&mut b, "metrics-request").is_some(),
        "relayed"
    );
    // Counted as the server gets to it: wait rather than race.
    server.wait_metric("tinybase_connections", |n| n == 2.0);
    server.wait_metric("tinybase_connections_total", |n| n == 2.0);
    server.wait_metric("tinybase_rooms", |n| n == 1.0);
    server.wait_metric("tinybase_messages_in_total", |n| n >= 1.0);
    server.wait_metric("tinybase_bytes_in_total", |n| {
        n >= write_cell("metrics").len() as f64
    });
    server.wait_metric("tinybase_messages_out_total", |n| n >= 1.0);
    server.wait_metric("tinybase_bytes_out_total", |n| {
        n >= write_cell("metrics").len() as f64
    });

    drop((a, b));
    server.wait_metric("tinybase_connections", |n| n == 0.0);
    assert_eq!(
        server.get("/no-such-page").0,
        426,
        "any other path is a room: upgrade required"
    );
}

#[test]
fn jwt_refuses_what_it_should_and_admits_valid_tokens() {
    let dir = TempDir::new("jwt");
    let secret_file = dir.file("secret", &format!("{SECRET}\n"));
    let server = Server::start(&["--jwt-secret-file", secret_file.to_str().unwrap()]);
    let now = unix_now();
    let valid = cli_token(&secret_file, &["--rooms", "shop/*", "--ttl-seconds", "600"]);
    let b64 = |json: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    let claims = format!(r#"{{"rooms":["shop/*"],"exp":{}}}"#, now + 600);
    let forged = sign_hs256(b"not the secret", &claims);
    let expired = token(&format!(r#"{{"rooms":["shop/*"],"exp":{}}}"#, now - 3600));
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));

    assert_eq!(
        try_connect(&server.url("shop/pets"), &[]).err(),
        Some(401),
        "no token"
    );
    for (what, bad) in [
        ("wrong signature", &forged),
        ("expired", &expired),
        ("alg none", &alg_none),
    ] {
        assert_eq!(
            try_connect(&server.url(&format!("shop/pets?token={bad}")), &[]).err(),
            Some(401),
            "{what}"
        );
        let bearer = format!("Bearer {bad}");
        assert_eq!(
            try_connect(&server.url("shop/pets"), &[("authorization", &bearer)]).err(),
            Some(401),
            "{what}"
        );
    }
    assert_eq!(
        try_connect(&server.url(&format!("other?token={valid}")), &[]).err(),
        Some(401),
        "wrong room"
    );
    assert_eq!(
        try_connect(&server.url(&format!("shop?token={valid}")), &[]).err(),
        Some(401),
        "shop/* is not shop"
    );
    assert_eq!(
        server.metrics()["tinybase_refused_total{reason=\"auth\"}"],
        9.0
    );

    let mut by_query = try_connect(&server.url(&format!("shop/pets?token={valid}")), &[])
        .expect("?token= admitted");
    let bearer = format!("Bearer {valid}");
    let mut by_header = try_connect(&server.url("shop/pets"), &[("authorization", &bearer)])
        .expect("header admitted");
    server.wait_joined(2);
    send(&mut by_query, &write_cell("authorized"));
    assert!(receive_containing(&mut by_header, "authorized-request").is_some());
    assert_eq!(server.get("/healthz").0, 200, "health needs no token");
}

#[test]
fn jwt_checks_each_multiplexed_channel() {
    let dir = TempDir::new("mux");
    let secret_file = dir.file("secret", SECRET);
    let server = Server::start(&["--jwt-secret-file", secret_file.to_str().unwrap()]);
    let pets = cli_token(&secret_file, &["--rooms", "shop/pets"]);
    let mux = [("sec-websocket-protocol", "tinybase")];
    let other = token(&format!(r#"{{"rooms":"zoo/*","exp":{}}}"#, unix_now() + 60));
    assert_eq!(
        try_connect(&server.url(&format!("shop?token={other}")), &mux).err(),
        Some(401),
        "no channel under /shop is open to a zoo/* token"
    );

    let mut socket = try_connect(&server.url(&format!("shop?token={pets}")), &mux)
        .expect("a socket on /shop for a shop/pets token");
    let control = |request: &str, control: u8, body: &str| {
        format!("S\n[\"{request}\",-1,[{control},{body}]]")
    };
    send(&mut socket, &control("hello-request-01", 0, "1"));
    assert!(receive_containing(&mut socket, "hello-request-01").is_some());
    send(&mut socket, &control("subscribe-pets-1", 1, "\"pets\""));
    assert!(
        receive_containing(&mut socket, "subscribe-pets-1").is_some(),
        "the allowed channel is acknowledged"
    );
    // A channel the token does not open is not acknowledged (the client's subscribe times out);
    // the socket and its other channels go on.
    send(&mut socket, &control("subscribe-cats-1", 1, "\"cats\""));
    let quiet = Duration::from_millis(700);
    assert_eq!(receive_within(&mut socket, "subscribe-cats-1", quiet), None);
    send(&mut socket, &control("subscribe-pets-2", 1, "\"pets\""));
    assert!(receive_containing(&mut socket, "subscribe-pets-2").is_some());
    server.wait_metric("tinybase_refused_total{reason=\"auth\"}", |n| n == 2.0);
}

#[test]
fn read_only_clients_pull_but_change_nothing() {
    let dir = TempDir::new("ro");
    let secret_file = dir.file("secret", SECRET);
    let server = Server::start(&["--jwt-secret-file", secret_file.to_str().unwrap()]);
    let exp = unix_now() + 600;
    let rw = token(&format!(r#"{{"rooms":"farm","exp":{exp}}}"#));
    let ro = cli_token(&secret_file, &["--rooms", "farm", "--read-only"]);
    let mut writer = connect(&server.url(&format!("farm?token={rw}")));
    let mut reader = connect(&server.url(&format!("farm?token={ro}")));
    let empty = room_hashes(&mut writer);

    send(&mut reader, &write_cell("from-reader"));
    send(&mut reader, &format!("S{}", write_cell("from-reader-to-s")));
    // Long enough for a relay on loopback to have happened many times over.
    let quiet = Duration::from_millis(700);
    assert_eq!(
        receive_within(&mut writer, "from-reader", quiet),
        None,
        "a read-only write reached a client"
    );
    assert_eq!(
        room_hashes(&mut writer),
        empty,
        "a read-only write reached the room"
    );

    send(&mut writer, &write_cell("from-writer"));
    assert!(
        receive_containing(&mut reader, "from-writer-request").is_some(),
        "read-only clients still receive"
    );
    let deadline = Instant::now() + PATIENCE;
    while room_hashes(&mut reader) == empty {
        assert!(
            Instant::now() < deadline,
            "the room never took the writer's change"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connection_limits_refuse_before_the_upgrade() {
    let server = Server::start(&["--max-clients", "2"]);
    let first = connect(&server.url("a"));
    let _second = connect(&server.url("b"));
    let refused = try_connect(&server.url("c"), &[]).expect_err("a third client");
    assert!(refused >= 400, "{refused}");
    assert_eq!(
        server.metrics()["tinybase_refused_total{reason=\"max_clients\"}"],
        1.0
    );
    drop(first);
    // The slot frees once the server has noticed the close.
    let deadline = Instant::now() + PATIENCE;
    while try_connect(&server.url("c"), &[]).is_err() {
        assert!(
            Instant::now() < deadline,
            "the slot of a closed connection never freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let per_ip = Server::start(&["--max-connections-per-ip", "1"]);
    let _only = connect(&per_ip.url("a"));
    let refused =
        try_connect(&per_ip.url("a"), &[]).expect_err("a second connection from 127.0.0.1");
    assert!(refused >= 400, "{refused}");
    assert_eq!(
        per_ip.metrics()["tinybase_refused_total{reason=\"max_connections_per_ip\"}"],
        1.0
    );

    let rooms = Server::start(&["--max-rooms", "1"]);
    let _in_a = connect(&rooms.url("a"));
    let _also_in_a = connect(&rooms.url("a"));
    let refused = try_connect(&rooms.url("b"), &[]).expect_err("a second room");
    assert!(refused >= 400, "{refused}");
    assert_eq!(
        rooms.metrics()["tinybase_refused_total{reason=\"max_rooms\"}"],
        1.0
    );
}

#[test]
fn sigterm_saves_rooms_closes_sockets_1001_and_exits_0() {
    let dir = TempDir::new("term");
    let data = dir.0.join("data");
    let mut server = Server::start(&["--data", data.to_str().unwrap()]);
    let mut client = connect(&server.url("kept/room"));
    send(&mut client, &write_cell("kept"));
    let deadline = Instant::now() + PATIENCE;
    while room_hashes(&mut client) == serde_json::json!([0, 0]) {
        assert!(Instant::now() < deadline, "the room never took the change");
        std::thread::sleep(Duration::from_millis(20));
    }
    client.get_mut().set_read_timeout(Some(PATIENCE)).unwrap();

    let started = Instant::now();
    server.signal("-TERM");
    let close = loop {
        match client.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(error) => panic!("no close frame: {error}; stderr: {}", server.stderr()),
        }
    };
    assert_eq!(
        close.map(|f| f.code),
        Some(CloseCode::Away),
        "1001 Going Away"
    );
    // Answer the close, as real clients do, so the server need not wait for its grace period.
    let _ = client.flush();
    let status = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(started.elapsed() < Duration::from_secs(5));

    let files: Vec<_> = walk(&data)
        .into_iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .collect();
    assert_eq!(files.len(), 1, "one room file: {files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("kept"), "the change is in the file: {text}");

    // The room comes back from its file after a restart.
    let restarted = Server::start(&["--data", data.to_str().unwrap()]);
    let mut client = connect(&restarted.url("kept/room"));
    assert_ne!(room_hashes(&mut client), serde_json::json!([0, 0]));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn sigint_stops_an_idle_server_with_exit_0() {
    let mut server = Server::start(&[]);
    server.signal("-INT");
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)).code(),
        Some(0),
        "stderr: {}",
        server.stderr()
    );
}

#[test]
fn bad_flags_exit_2_and_bad_files_exit_1_with_a_message() {
    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for (args, message) in [
        (
            &["--max-clients", "many"][..],
            "--max-clients: \"many\" is not a whole number",
        ),
        (&["--frobnicate"], "unknown flag --frobnicate"),
        (&["--listen"], "--listen needs a value"),
        (&["token", "--rooms", "a"], "token needs --secret-file"),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message) && stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
    }
    let dir = TempDir::new("flags");
    let empty = dir.file("empty", "\n");
    for (args, message) in [
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--jwt-secret-file",
                empty.to_str().unwrap(),
            ],
            "is empty",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--jwt-secret-file",
                "/nonexistent/secret",
            ],
            "cannot read",
        ),
        (vec!["--listen", "not an address"], "--listen"),
    ] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let (code, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
}
