//! The `tinybase-server` binary: command line, logging to stderr, signals.
//!
//! `tinybase-server [serve flags]` runs the server until SIGTERM or SIGINT, then stops accepting,
//! saves every room, closes the sockets with 1001 and exits 0. `tinybase-server token ...` prints
//! an HS256 token for `--jwt-secret-file`. Usage errors exit 2, failures to start exit 1.

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tinybase::sync::ws::codec::MAX_PAYLOAD_BYTES;
use tinybase_server::jwt::{self, JwtOptions};
use tinybase_server::StoreKind;

const USAGE: &str = "\
Usage: tinybase-server [OPTIONS]
       tinybase-server token --secret-file FILE --rooms PATTERN [--rooms PATTERN]... [--ttl-seconds N] [--read-only]

A WebSocket sync server for TinyBase MergeableStores (wire-compatible with TinyBase's WsServer).
HTTP GET /healthz and /metrics (Prometheus) are served on the same port.

Options:
  --listen ADDR                   address to listen on [default: 127.0.0.1:8043]; port 0 picks a free one
  --data DIR                      folder of the room files (created if missing); without it rooms live in memory only
  --store KIND                    how rooms are kept: file (one file per room in --data, the default),
                                  sqlite (one incremental SQLite database per room in --data), or
                                  postgres://USER@HOST:PORT/DB (postgresql:// or a 'host=... dbname=...'
                                  string too: one PostgreSQL database, rooms as keys, which several
                                  servers may share; no --data)
  --room-idle-seconds S           keep a room loaded S seconds after its last client left
  --jwt-secret-file FILE          require HS256 JWTs signed with the secret in FILE (whitespace trimmed)
  --jwt-allow-no-exp              accept tokens without an exp claim (default: refused)
  --max-clients N                 most connections at once
  --max-rooms N                   most rooms loaded at once
  --max-connections-per-ip N      most connections at once from one IP address
  --max-message-bytes N           largest payload accepted, in bytes
  --request-timeout-seconds S     the server stores' request timeout, and the fragment expiry
  --fragment-size N               fragment what the server stores send into pieces of N bytes
  --anti-entropy-seconds S        every S seconds each room store re-announces its hashes and pulls
                                  from a client, repairing what a client never sent (default: off)
  --relay-only                    no server store per room: relay between clients only (TinyBase's WsServerSimple)
  --quiet                         log nothing but start and stop (no line per connection or error)
  -h, --help                      print this help
  -V, --version                   print the version

The token subcommand prints a token for --jwt-secret-file:
  --secret-file FILE              the same secret file as the server's
  --rooms PATTERN                 a room the token opens: exact, or a prefix ending in * (\"shop/*\", \"*\"); repeatable
  --ttl-seconds N                 lifetime [default: 3600]
  --read-only                     the client may pull but its writes reach nobody

Flags take their value as the next argument or after '=' (--listen=127.0.0.1:0).
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Serve(Serve),
    Token(Token),
    Help,
    Version,
}

/// `tinybase-server [OPTIONS]`. `None`: the server's default.
#[derive(Debug, Default, PartialEq)]
struct Serve {
    listen: Option<String>,
    data: Option<PathBuf>,
    store: Option<StoreKind>,
    room_idle: Option<Duration>,
    jwt_secret_file: Option<PathBuf>,
    jwt_allow_no_exp: bool,
    max_clients: Option<usize>,
    max_rooms: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_message_bytes: Option<usize>,
    request_timeout: Option<Duration>,
    fragment_size: Option<usize>,
    anti_entropy: Option<Duration>,
    relay_only: bool,
    quiet: bool,
}

/// `tinybase-server token ...`.
#[derive(Debug, PartialEq)]
struct Token {
    secret_file: PathBuf,
    rooms: Vec<String>,
    ttl_seconds: u64,
    read_only: bool,
}

/// Command-line arguments, one at a time, with `--flag=value` split.
struct Args {
    args: std::vec::IntoIter<OsString>,
    pending_value: Option<String>,
}

impl Args {
    /// The next flag; `Err` for an argument that is not a flag or not UTF-8.
    fn next_flag(&mut self) -> Result<Option<String>, String> {
        if let Some(value) = self.pending_value.take() {
            return Err(format!("unexpected value {value:?}"));
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        let arg = arg
            .into_string()
            .map_err(|arg| format!("argument {arg:?} is not UTF-8"))?;
        if !arg.starts_with('-') {
            return Err(format!("unexpected argument {arg:?}"));
        }
        match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => {
                self.pending_value = Some(value.to_string());
                Ok(Some(flag.to_string()))
            }
            _ => Ok(Some(arg)),
        }
    }

    /// Checks that the flag just read, which takes no value, was not given one with `=`.
    fn switch(&mut self, flag: &str) -> Result<(), String> {
        match self.pending_value.take() {
            Some(value) => Err(format!("{flag} takes no value (got {value:?})")),
            None => Ok(()),
        }
    }

    /// The value of `flag`.
    fn value(&mut self, flag: &str) -> Result<String, String> {
        match self.pending_value.take() {
            Some(value) => Ok(value),
            None => match self.args.next() {
                Some(value) => value
                    .into_string()
                    .map_err(|v| format!("{flag}: {v:?} is not UTF-8")),
                None => Err(format!("{flag} needs a value")),
            },
        }
    }

    fn number(&mut self, flag: &str) -> Result<usize, String> {
        let value = self.value(flag)?;
        value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
    }

    /// A whole number of at least 1 (a limit of 0 would refuse everything: surely a mistake).
    fn positive(&mut self, flag: &str) -> Result<usize, String> {
        match self.number(flag)? {
            0 => Err(format!("{flag} must be at least 1")),
            n => Ok(n),
        }
    }

    fn seconds(&mut self, flag: &str, allow_zero: bool) -> Result<Duration, String> {
        let value = self.value(flag)?;
        match value.parse::<f64>() {
            Ok(s) if s.is_finite() && (s > 0.0 || allow_zero && s == 0.0) && s < 1e9 => {
                Ok(Duration::from_secs_f64(s))
            }
            _ => Err(format!(
                "{flag}: {value:?} is not a {}number of seconds",
                if allow_zero { "" } else { "positive " }
            )),
        }
    }
}

/// Parses the arguments after the program name.
fn parse(args: Vec<OsString>) -> Result<Command, String> {
    let token = args.first().is_some_and(|first| first == "token");
    let mut args = Args {
        args: args.into_iter(),
        pending_value: None,
    };
    if token {
        args.args.next();
        return parse_token(args);
    }
    let mut serve = Serve::default();
    while let Some(flag) = args.next_flag()? {
        let f = flag.as_str();
        match f {
            "-h" | "--help" => return args.switch(f).map(|()| Command::Help),
            "-V" | "--version" => return args.switch(f).map(|()| Command::Version),
            "--listen" => once(&mut serve.listen, f, args.value(f))?,
            "--data" => match args.value(f)? {
                dir if dir.is_empty() => return Err("--data needs a folder".into()),
                dir => once(&mut serve.data, f, Ok(PathBuf::from(dir)))?,
            },
            "--store" => once(
                &mut serve.store,
                f,
                args.value(f).and_then(|v| StoreKind::parse(&v)),
            )?,
            "--room-idle-seconds" => once(&mut serve.room_idle, f, args.seconds(f, true))?,
            "--jwt-secret-file" => once(
                &mut serve.jwt_secret_file,
                f,
                args.value(f).map(PathBuf::from),
            )?,
            "--jwt-allow-no-exp" => serve.jwt_allow_no_exp = args.switch(f).map(|()| true)?,
            "--max-clients" => once(&mut serve.max_clients, f, args.positive(f))?,
            "--max-rooms" => once(&mut serve.max_rooms, f, args.positive(f))?,
            "--max-connections-per-ip" => {
                once(&mut serve.max_connections_per_ip, f, args.positive(f))?
            }
            "--max-message-bytes" => match args.positive(f)? {
                // The codec refuses more whatever this says: better said at start than at run time.
                n if n > MAX_PAYLOAD_BYTES => {
                    return Err(format!(
                        "{f} is at most {MAX_PAYLOAD_BYTES} (TinyBase's limit)"
                    ))
                }
                n => once(&mut serve.max_message_bytes, f, Ok(n))?,
            },
            "--request-timeout-seconds" => {
                once(&mut serve.request_timeout, f, args.seconds(f, false))?
            }
            "--fragment-size" => once(&mut serve.fragment_size, f, args.positive(f))?,
            "--anti-entropy-seconds" => once(&mut serve.anti_entropy, f, args.seconds(f, false))?,
            "--relay-only" => serve.relay_only = args.switch(f).map(|()| true)?,
            "--quiet" => serve.quiet = args.switch(f).map(|()| true)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if serve.jwt_allow_no_exp && serve.jwt_secret_file.is_none() {
        return Err("--jwt-allow-no-exp needs --jwt-secret-file".into());
    }
    if serve.relay_only && serve.data.is_some() {
        return Err("--relay-only keeps no room content: it cannot be used with --data".into());
    }
    match (&serve.store, &serve.data) {
        (Some(StoreKind::Postgres { .. }), Some(_)) => {
            return Err("--store postgres://... keeps rooms in PostgreSQL: it cannot be used with --data".into())
        }
        (Some(StoreKind::File), None) => return Err("--store file needs --data DIR".into()),
        (Some(StoreKind::Sqlite), None) => {
            return Err("--store sqlite keeps one database per room in a folder: it needs --data DIR".into())
        }
        _ => {}
    }
    if serve.relay_only && serve.store.is_some() {
        return Err("--relay-only keeps no room content: it cannot be used with --store".into());
    }
    if serve.relay_only && serve.anti_entropy.is_some() {
        return Err(
            "--anti-entropy-seconds is for the room stores: it cannot be used with --relay-only"
                .into(),
        );
    }
    Ok(Command::Serve(serve))
}

/// Sets a flag's value, refusing a flag given twice.
fn once<T>(slot: &mut Option<T>, flag: &str, value: Result<T, String>) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{flag} given twice"));
    }
    *slot = Some(value?);
    Ok(())
}

fn parse_token(mut args: Args) -> Result<Command, String> {
    let (mut secret_file, mut rooms, mut ttl_seconds, mut read_only) =
        (None, Vec::new(), None, false);
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-h" | "--help" => return args.switch(&flag).map(|()| Command::Help),
            "--secret-file" if secret_file.is_none() => {
                secret_file = Some(PathBuf::from(args.value(&flag)?))
            }
            "--rooms" => rooms.push(args.value(&flag)?),
            "--ttl-seconds" if ttl_seconds.is_none() => {
                ttl_seconds = Some(args.positive(&flag)? as u64)
            }
            "--read-only" => {
                args.switch(&flag)?;
                read_only = true;
            }
            "--secret-file" | "--ttl-seconds" => return Err(format!("{flag} given twice")),
            _ => return Err(format!("token: unknown flag {flag}")),
        }
    }
    let secret_file = secret_file.ok_or("token needs --secret-file")?;
    if rooms.is_empty() {
        return Err("token needs at least one --rooms pattern".into());
    }
    Ok(Command::Token(Token {
        secret_file,
        rooms,
        ttl_seconds: ttl_seconds.unwrap_or(3600),
        read_only,
    }))
}

/// The secret of a secret file: its bytes with surrounding whitespace (a final newline) trimmed.
fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the JWT secret file {}: {e}", path.display()))?;
    let secret = bytes.trim_ascii();
    if secret.is_empty() {
        return Err(format!("the JWT secret file {} is empty", path.display()));
    }
    Ok(secret.to_vec())
}

/// The token's claims: rooms, expiry, read-only.
fn token_claims(token: &Token, now: u64) -> String {
    let mut claims =
        serde_json::json!({ "rooms": token.rooms, "iat": now, "exp": now + token.ttl_seconds });
    if token.read_only {
        claims["ro"] = serde_json::Value::Bool(true);
    }
    claims.to_string()
}

fn print_token(token: &Token) -> Result<(), String> {
    let secret = read_secret(&token.secret_file)?;
    println!(
        "{}",
        jwt::sign_hs256(&secret, &token_claims(token, jwt::unix_now()))
    );
    Ok(())
}

fn resolve_listen(listen: Option<&str>) -> Result<SocketAddr, String> {
    let listen = listen.unwrap_or("127.0.0.1:8043");
    let mut addrs = listen
        .to_socket_addrs()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("--listen {listen:?}: no address"))
}

/// The server's options from the flags; what a flag leaves out stays the library's default.
fn server_options(serve: &Serve) -> Result<tinybase_server::ServerOptions, String> {
    let mut options = tinybase_server::ServerOptions {
        listen: resolve_listen(serve.listen.as_deref())?,
        data_dir: serve.data.clone(),
        store: serve.store.clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(path) = &serve.jwt_secret_file {
        let jwt_options = JwtOptions {
            require_exp: !serve.jwt_allow_no_exp,
            ..JwtOptions::default()
        };
        let secret = read_secret(path)?;
        if secret.len() < 32 {
            // RFC 7518 3.2: an HS256 key shorter than the hash makes tokens guessable offline.
            eprintln!(
                "tinybase-server: warning: the JWT secret is {} bytes; use at least 32 random bytes",
                secret.len()
            );
        }
        options.auth = Some(jwt::jwt_auth_with(secret, jwt_options));
    }
    let limits = [
        (&mut options.max_clients, serve.max_clients),
        (&mut options.max_rooms, serve.max_rooms),
        (
            &mut options.max_connections_per_ip,
            serve.max_connections_per_ip,
        ),
        (&mut options.max_message_bytes, serve.max_message_bytes),
    ];
    for (limit, flag) in limits {
        *limit = flag.unwrap_or(*limit);
    }
    if let Some(idle) = serve.room_idle {
        options.room_idle = idle;
    }
    if let Some(timeout) = serve.request_timeout {
        options.request_timeout = timeout;
    }
    if serve.fragment_size.is_some() {
        options.fragment_size = serve.fragment_size;
    }
    if serve.anti_entropy.is_some() {
        options.anti_entropy = serve.anti_entropy;
    }
    options.server_store = !serve.relay_only;
    options.log = !serve.quiet;
    Ok(options)
}

/// Runs the server until a signal asks it to stop.
async fn serve(options: tinybase_server::ServerOptions) -> Result<(), String> {
    let listen = options.listen;
    let authenticated = options.auth.is_some();
    let kept = options.store.describe(options.data_dir.as_deref());
    let mut signals = StopSignals::new()?;
    let handle = tinybase_server::Server::start(options)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable => {
                format!("cannot listen on {listen}: {e}")
            }
            _ => format!("cannot start: {e}"),
        })?;
    match kept {
        Some(kept) => eprintln!("tinybase-server: rooms are kept in {kept}"),
        None => eprintln!("tinybase-server: no --data folder: rooms live in memory only"),
    }
    if !authenticated {
        eprintln!(
            "tinybase-server: no --jwt-secret-file: every client may read and write every room"
        );
    }
    let mut stdout = std::io::stdout().lock();
    // Tests and supervisors wait for this line: flush it now, whatever stdout is.
    let _ = writeln!(
        stdout,
        "tinybase-server listening on ws://{}",
        handle.local_addr()
    );
    let _ = stdout.flush();
    drop(stdout);

    let signal = signals.next().await;
    eprintln!("tinybase-server: {signal}: stopping (saving rooms, closing sockets)");
    tokio::select! {
        () = handle.shutdown() => {}
        second = signals.next() => {
            // An operator who insists wants out now; what was saved so far stays.
            return Err(format!("{second} again: exiting without finishing the shutdown"));
        }
    }
    eprintln!("tinybase-server: stopped");
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment this exists (before the `listening` line: a
/// supervisor may signal right after it, and the default action would kill the process unsaved).
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Result<StopSignals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let catch = |kind| signal(kind).map_err(|e| format!("cannot catch signals: {e}"));
            Ok(StopSignals {
                term: catch(SignalKind::terminate())?,
                int: catch(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for the next stop signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1).collect()) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("tinybase-server: {message}\nTry 'tinybase-server --help'.");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("tinybase-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Token(token) => print_token(&token),
        Command::Serve(serve) => server_options(&serve).and_then(|options| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("tinybase-server")
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            runtime.block_on(self::serve(options))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tinybase-server: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn serve_flags() {
        assert_eq!(parse_str(&[]), Ok(Command::Serve(Serve::default())));
        let all = parse_str(&[
            "--listen",
            "127.0.0.1:0",
            "--data=./d",
            "--store",
            "sqlite",
            "--room-idle-seconds",
            "2.5",
            "--jwt-secret-file",
            "s",
            "--jwt-allow-no-exp",
            "--max-clients",
            "10",
            "--max-rooms=3",
            "--max-connections-per-ip",
            "2",
            "--max-message-bytes",
            "1000",
            "--request-timeout-seconds",
            "0.5",
            "--fragment-size",
            "64",
            "--anti-entropy-seconds=30",
            "--quiet",
        ]);
        let expected = Serve {
            listen: Some("127.0.0.1:0".into()),
            data: Some("./d".into()),
            store: Some(StoreKind::Sqlite),
            room_idle: Some(Duration::from_millis(2500)),
            jwt_secret_file: Some("s".into()),
            jwt_allow_no_exp: true,
            max_clients: Some(10),
            max_rooms: Some(3),
            max_connections_per_ip: Some(2),
            max_message_bytes: Some(1000),
            request_timeout: Some(Duration::from_millis(500)),
            fragment_size: Some(64),
            anti_entropy: Some(Duration::from_secs(30)),
            relay_only: false,
            quiet: true,
        };
        assert_eq!(all, Ok(Command::Serve(expected)));
        assert_eq!(
            parse_str(&["--max-clients", "1", "--help"]),
            Ok(Command::Help)
        );
        assert_eq!(parse_str(&["-V"]), Ok(Command::Version));
        assert_eq!(parse_str(&["--room-idle-seconds", "0"]).map(|_| ()), Ok(()));
    }

    #[test]
    fn anti_entropy_reaches_the_server_options() {
        let Ok(Command::Serve(serve)) = parse_str(&["--anti-entropy-seconds", "2.5"]) else {
            panic!("parses")
        };
        assert_eq!(
            server_options(&serve).unwrap().anti_entropy,
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            server_options(&Serve::default()).unwrap().anti_entropy,
            None,
            "off by default"
        );
    }

    #[test]
    fn the_store_reaches_the_server_options() {
        let options = |args: &[&str]| {
            let Ok(Command::Serve(serve)) = parse_str(args) else {
                panic!("parses")
            };
            server_options(&serve).unwrap()
        };
        let url = "postgresql://u:pw@127.0.0.1:5432/tb";
        assert_eq!(
            options(&["--store", url]).store,
            StoreKind::Postgres { dsn: url.into() }
        );
        let sqlite = options(&["--data", "d", "--store=sqlite"]);
        assert_eq!((sqlite.store, sqlite.data_dir), (StoreKind::Sqlite, Some("d".into())));
        assert_eq!(options(&["--data", "d"]).store, StoreKind::File, "files by default");
    }

    #[test]
    fn bad_serve_flags_say_why() {
        for (args, message) in [
            (&["--bogus"][..], "unknown flag --bogus"),
            (&["--listen"], "--listen needs a value"),
            (
                &["--max-clients", "ten"],
                "--max-clients: \"ten\" is not a whole number",
            ),
            (&["--max-clients", "0"], "--max-clients must be at least 1"),
            (
                &["--max-rooms", "-1"],
                "--max-rooms: \"-1\" is not a whole number",
            ),
            (
                &["--request-timeout-seconds", "0"],
                "is not a positive number of seconds",
            ),
            (
                &["--room-idle-seconds", "nan"],
                "is not a number of seconds",
            ),
            (&["--listen", "a", "--listen", "b"], "--listen given twice"),
            (&["serve"], "unexpected argument \"serve\""),
            (&["--help=yes"], "--help takes no value (got \"yes\")"),
            (&["--data="], "--data needs a folder"),
            (&["--jwt-allow-no-exp"], "needs --jwt-secret-file"),
            (&["--max-message-bytes", "16777217"], "is at most 16777216"),
            (&["--quiet=no"], "--quiet takes no value"),
            (
                &["--relay-only", "--data", "d"],
                "cannot be used with --data",
            ),
            (&["--store", "mysql://x"], "--store is file, sqlite or a postgres:// URL"),
            (&["--store", "sqlite"], "it needs --data DIR"),
            (&["--store=file"], "--store file needs --data DIR"),
            (
                &["--store", "postgres://h/db", "--data", "d"],
                "cannot be used with --data",
            ),
            (
                &["--relay-only", "--store", "postgresql://h/db"],
                "cannot be used with --store",
            ),
            (
                &["--anti-entropy-seconds", "0"],
                "is not a positive number of seconds",
            ),
            (
                &["--relay-only", "--anti-entropy-seconds", "5"],
                "cannot be used with --relay-only",
            ),
        ] {
            let error = parse_str(args).unwrap_err();
            assert!(error.contains(message), "{args:?}: {error}");
        }
    }

    #[test]
    fn token_flags_and_claims() {
        let parsed = parse_str(&[
            "token",
            "--secret-file",
            "f",
            "--rooms",
            "a/*",
            "--rooms=b",
            "--read-only",
        ]);
        let token = Token {
            secret_file: "f".into(),
            rooms: vec!["a/*".into(), "b".into()],
            ttl_seconds: 3600,
            read_only: true,
        };
        assert_eq!(parsed, Ok(Command::Token(token)));
        let Ok(Command::Token(token)) = parse_str(&[
            "token",
            "--secret-file",
            "f",
            "--rooms",
            "x",
            "--ttl-seconds",
            "60",
        ]) else {
            panic!()
        };
        assert_eq!(
            token_claims(&token, 1000),
            r#"{"rooms":["x"],"iat":1000,"exp":1060}"#
        );
        for (args, message) in [
            (&["token", "--rooms", "x"][..], "token needs --secret-file"),
            (&["token", "--secret-file", "f"], "at least one --rooms"),
            (
                &[
                    "token",
                    "--secret-file",
                    "f",
                    "--rooms",
                    "x",
                    "--ttl-seconds",
                    "0",
                ],
                "must be at least 1",
            ),
            (&["token", "--listen", "x"], "token: unknown flag --listen"),
        ] {
            let error = parse_str(args).unwrap_err();
            assert!(error.contains(message), "{args:?}: {error}");
        }
    }

    #[test]
    fn secret_files_are_trimmed_and_never_empty() {
        let dir =
            std::env::temp_dir().join(format!("tinybase-server-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "  s3cret\n").unwrap();
        assert_eq!(read_secret(&file), Ok(b"s3cret".to_vec()));
        std::fs::write(&file, "\n \n").unwrap();
        assert!(read_secret(&file).unwrap_err().contains("is empty"));
        assert!(read_secret(&dir.join("missing"))
            .unwrap_err()
            .contains("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
