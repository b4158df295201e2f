//! A connection: reaching the server (TCP or unix socket), the startup and authentication
//! exchange, then queries. Blocking, one request at a time, no background thread.

use super::auth::{md5_password, Scram, SCRAM_SHA_256};
use super::message::{check_cstr, parse_error, put_cstr, read_message, Cursor, Writer};
use super::{Config, Error, Host, Row, ToParam};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

/// The socket under a connection.
enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A statement prepared on one connection (named `s<N>` there); only valid on that connection.
pub struct Statement {
    name: String,
}

/// What to run: a prepared statement, or SQL parsed for this one execution (unnamed statement).
pub enum Query<'a> {
    /// A statement from [`Client::prepare`].
    Prepared(&'a Statement),
    /// SQL text.
    Sql(&'a str),
}

impl<'a> From<&'a Statement> for Query<'a> {
    fn from(s: &'a Statement) -> Query<'a> {
        Query::Prepared(s)
    }
}

impl<'a> From<&'a str> for Query<'a> {
    fn from(s: &'a str) -> Query<'a> {
        Query::Sql(s)
    }
}

impl<'a> From<&'a String> for Query<'a> {
    fn from(s: &'a String) -> Query<'a> {
        Query::Sql(s)
    }
}

/// A connection to a PostgreSQL server.
pub struct Client {
    stream: BufReader<Stream>,
    out: Writer,
    /// The body of the message last read (reused: one allocation for a whole result).
    body: Vec<u8>,
    closed: bool,
    statements: u32,
}

/// The protocol version of the startup message: 3.0.
const PROTOCOL_3_0: i32 = 196_608;

impl Client {
    /// Connects to the first of `config`'s hosts that accepts, logs in, and waits until the
    /// server is ready for queries. The error is the last host's.
    pub fn connect(config: &Config) -> Result<Client, Error> {
        if config.require_tls {
            return Err(Error::Config("sslmode=require asks for TLS, which this client does not have".into()));
        }
        let count = config.hosts.len().max(config.hostaddrs.len());
        if count == 0 {
            return Err(Error::Config("both host and hostaddr are missing".into()));
        }
        if !config.hosts.is_empty() && !config.hostaddrs.is_empty() && config.hosts.len() != config.hostaddrs.len() {
            return Err(Error::Config("the numbers of hosts and of hostaddrs differ".into()));
        }
        if config.ports.len() > 1 && config.ports.len() != count {
            return Err(Error::Config("the numbers of hosts and of ports differ".into()));
        }
        let mut order: Vec<usize> = (0..count).collect();
        if config.random_order {
            shuffle(&mut order);
        }
        let mut last = Error::Config("no host".into());
        for i in order {
            let port = config.ports.get(i).or(config.ports.first()).copied().unwrap_or(5432);
            let stream = match config.hostaddrs.get(i) {
                Some(ip) => connect_tcp(&[SocketAddr::new(*ip, port)], config),
                None => match &config.hosts[i] {
                    Host::Tcp(name) => match (name.as_str(), port).to_socket_addrs() {
                        Ok(addrs) => connect_tcp(&addrs.collect::<Vec<_>>(), config),
                        Err(e) => Err(Error::Connect(e)),
                    },
                    #[cfg(unix)]
                    Host::Unix(dir) => std::os::unix::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                        .map(Stream::Unix)
                        .map_err(Error::Connect),
                    #[cfg(not(unix))]
                    Host::Unix(_) => Err(Error::Config("unix sockets are not supported on this platform".into())),
                },
            };
            let attempt = stream.and_then(|stream| {
                let mut client = Client { stream: BufReader::with_capacity(64 * 1024, stream), out: Writer { buf: Vec::new() }, body: Vec::new(), closed: false, statements: 0 };
                client.startup(config)?;
                if config.read_write && client.simple_query("SHOW transaction_read_only")?.first().and_then(|r| r.str(0).ok()) == Some("on") {
                    return Err(Error::Config("the server's sessions are read-only (target_session_attrs=read-write)".into()));
                }
                Ok(client)
            });
            match attempt {
                Ok(client) => return Ok(client),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether the connection is known to be unusable (the server closed it, or a read or
    /// write failed): a new one is needed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn startup(&mut self, config: &Config) -> Result<(), Error> {
        let user = match &config.user {
            Some(u) => u.clone(),
            None => os_user()?,
        };
        let mut params: Vec<(&str, &str)> = vec![("client_encoding", "UTF8"), ("user", &user)];
        if let Some(db) = &config.dbname {
            params.push(("database", db));
        }
        if let Some(options) = &config.options {
            params.push(("options", options));
        }
        if let Some(name) = &config.application_name {
            params.push(("application_name", name));
        }
        for (key, value) in &params {
            check_cstr(value, key)?;
        }
        self.out.framed(|b| {
            b.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
            for (key, value) in &params {
                put_cstr(b, key.as_bytes());
                put_cstr(b, value.as_bytes());
            }
            b.push(0);
        })?;
        self.flush()?;
        self.authenticate(&user, config.password.as_deref())?;
        // ParameterStatus and BackendKeyData until ReadyForQuery; an error ends the startup.
        loop {
            match self.read()? {
                b'Z' => return Ok(()),
                b'E' => return Err(self.server_error()),
                b'S' | b'K' | b'N' => {}
                tag => return Err(self.unexpected(tag)),
            }
        }
    }

    fn authenticate(&mut self, user: &str, password: Option<&[u8]>) -> Result<(), Error> {
        let need_password = || password.ok_or_else(|| Error::Config("the server asks for a password and none is set".into()));
        let mut scram: Option<Scram> = None;
        loop {
            match self.read()? {
                b'R' => {}
                b'E' => return Err(self.server_error()),
                b'N' => continue,
                tag => return Err(self.unexpected(tag)),
            }
            let mut c = Cursor::new(&self.body);
            match c.i32()? {
                0 => return Ok(()),
                3 => {
                    let pw = need_password()?.to_vec();
                    self.out.message(b'p', |b| put_cstr(b, &pw))?;
                }
                5 => {
                    let salt = c.bytes(4)?;
                    let response = md5_password(user, need_password()?, [salt[0], salt[1], salt[2], salt[3]]);
                    self.out.message(b'p', |b| put_cstr(b, response.as_bytes()))?;
                }
                10 => {
                    let mut mechanisms = Vec::new();
                    loop {
                        let m = c.cstr()?;
                        if m.is_empty() {
                            break;
                        }
                        mechanisms.push(String::from_utf8_lossy(m).into_owned());
                    }
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(Error::Auth(format!("the server offers only SASL mechanisms {mechanisms:?}; this client speaks {SCRAM_SHA_256}")));
                    }
                    let s = Scram::new(need_password()?)?;
                    let first = s.client_first();
                    scram = Some(s);
                    self.out.message(b'p', |b| {
                        put_cstr(b, SCRAM_SHA_256.as_bytes());
                        b.extend_from_slice(&(first.len() as i32).to_be_bytes());
                        b.extend_from_slice(first.as_bytes());
                    })?;
                }
                11 => {
                    let server_first = std::str::from_utf8(c.rest()).map_err(|_| Error::Auth("a SCRAM message is not UTF-8".into()))?;
                    let s = scram.as_mut().ok_or_else(|| Error::Protocol("SASLContinue before SASL".into()))?;
                    let last = s.client_final(server_first)?;
                    self.out.message(b'p', |b| b.extend_from_slice(last.as_bytes()))?;
                }
                12 => {
                    let server_final = std::str::from_utf8(c.rest()).map_err(|_| Error::Auth("a SCRAM message is not UTF-8".into()))?;
                    scram.as_ref().ok_or_else(|| Error::Protocol("SASLFinal before SASL".into()))?.verify_server_final(server_final)?;
                    continue;
                }
                2 => return Err(Error::Auth("the server asks for Kerberos V5 authentication, which this client does not speak".into())),
                7..=9 => return Err(Error::Auth("the server asks for GSSAPI/SSPI authentication, which this client does not speak".into())),
                other => return Err(Error::Auth(format!("the server asks for an unknown authentication method ({other})"))),
            }
            self.flush()?;
        }
    }

    /// Runs `sql` (one or more statements separated by `;`) through the simple query protocol
    /// and returns the rows they produced. The first error is returned once the server is ready
    /// again.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>, Error> {
        self.check_open()?;
        check_cstr(sql, "query")?;
        self.out.message(b'Q', |b| put_cstr(b, sql.as_bytes()))?;
        self.flush()?;
        self.results().map(|(rows, _)| rows)
    }

    /// Runs `sql` through the simple query protocol, ignoring any rows.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).map(drop)
    }

    /// Parses `sql` once on the server, for [`query`](Client::query) with its parameters.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.check_open()?;
        check_cstr(sql, "query")?;
        self.statements += 1;
        let name = format!("s{}", self.statements);
        self.out.message(b'P', |b| {
            put_cstr(b, name.as_bytes());
            put_cstr(b, sql.as_bytes());
            b.extend_from_slice(&0i16.to_be_bytes());
        })?;
        self.out.message(b'S', |_| {})?;
        self.flush()?;
        self.results()?;
        Ok(Statement { name })
    }

    /// Runs a statement with `params` (text format; the statement gives them their types) and
    /// returns its rows.
    pub fn query<'a>(&mut self, query: impl Into<Query<'a>>, params: &[&dyn ToParam]) -> Result<Vec<Row>, Error> {
        self.extended(query.into(), params).map(|(rows, _)| rows)
    }

    /// Like [`query`](Client::query), expecting exactly one row.
    pub fn query_one<'a>(&mut self, query: impl Into<Query<'a>>, params: &[&dyn ToParam]) -> Result<Row, Error> {
        let mut rows = self.query(query, params)?;
        match rows.len() {
            1 => Ok(rows.pop().expect("one row")),
            n => Err(Error::RowCount(n)),
        }
    }

    /// Like [`query`](Client::query), expecting at most one row.
    pub fn query_opt<'a>(&mut self, query: impl Into<Query<'a>>, params: &[&dyn ToParam]) -> Result<Option<Row>, Error> {
        let mut rows = self.query(query, params)?;
        match rows.len() {
            0 | 1 => Ok(rows.pop()),
            n => Err(Error::RowCount(n)),
        }
    }

    /// Runs a statement and returns the number of rows it affected (its command tag's count).
    pub fn execute<'a>(&mut self, query: impl Into<Query<'a>>, params: &[&dyn ToParam]) -> Result<u64, Error> {
        self.extended(query.into(), params).map(|(_, affected)| affected)
    }

    /// Parse (when unprepared), Bind, Execute and Sync in one write: one round trip.
    fn extended(&mut self, query: Query<'_>, params: &[&dyn ToParam]) -> Result<(Vec<Row>, u64), Error> {
        self.check_open()?;
        let count = i16::try_from(params.len()).map_err(|_| Error::Config("more than 32767 parameters".into()))?;
        let name = match query {
            Query::Prepared(s) => s.name.as_str(),
            Query::Sql(sql) => {
                check_cstr(sql, "query")?;
                self.out.message(b'P', |b| {
                    put_cstr(b, b"");
                    put_cstr(b, sql.as_bytes());
                    b.extend_from_slice(&0i16.to_be_bytes());
                })?;
                ""
            }
        };
        let mut overflow = false;
        self.out.message(b'B', |b| {
            put_cstr(b, b""); // the unnamed portal
            put_cstr(b, name.as_bytes());
            b.extend_from_slice(&0i16.to_be_bytes()); // every parameter in text format
            b.extend_from_slice(&count.to_be_bytes());
            for param in params {
                let at = b.len();
                b.extend_from_slice(&[0; 4]);
                param.write_text(b);
                let len = i32::try_from(b.len() - at - 4).unwrap_or_else(|_| {
                    overflow = true;
                    0
                });
                b[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            b.extend_from_slice(&0i16.to_be_bytes()); // every result column in text format
        })?;
        if overflow {
            self.out.buf.clear();
            return Err(Error::Config("a parameter is larger than 2 GB".into()));
        }
        self.out.message(b'E', |b| {
            put_cstr(b, b"");
            b.extend_from_slice(&0i32.to_be_bytes()); // all rows
        })?;
        self.out.message(b'S', |_| {})?;
        self.flush()?;
        self.results()
    }

    /// `COPY ... FROM STDIN` (`sql`) fed with `data` (in the COPY's format); returns once the
    /// server has taken it all, with its error if it refused any.
    pub fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        check_cstr(sql, "query")?;
        self.out.message(b'Q', |b| put_cstr(b, sql.as_bytes()))?;
        self.flush()?;
        loop {
            match self.read()? {
                b'G' => break,
                b'E' => {
                    let error = self.server_error();
                    self.until_ready()?;
                    return Err(error);
                }
                b'N' | b'S' | b'A' => {}
                tag => return Err(self.unexpected(tag)),
            }
        }
        // Sent in chunks of at most 1 MB; an error midway comes after CopyDone, as the server
        // drops what follows an error in copy-in mode.
        for chunk in data.chunks(1 << 20) {
            self.out.message(b'd', |b| b.extend_from_slice(chunk))?;
            self.flush()?;
        }
        self.out.message(b'c', |_| {})?;
        self.flush()?;
        self.results().map(drop)
    }

    /// Reads a query's messages up to ReadyForQuery: the rows and the affected-row count, or the
    /// first error.
    fn results(&mut self) -> Result<(Vec<Row>, u64), Error> {
        let result = self.read_results();
        // Anything but the server's own error leaves the conversation somewhere unknown.
        if matches!(result, Err(ref e) if !matches!(e, Error::Db(_))) {
            self.closed = true;
        }
        result
    }

    fn read_results(&mut self) -> Result<(Vec<Row>, u64), Error> {
        let mut rows = Vec::new();
        let mut affected = 0;
        let mut error = None;
        loop {
            // A FATAL error is followed by the server closing the connection: report the error.
            let tag = match self.read() {
                Ok(tag) => tag,
                Err(e) => return Err(error.unwrap_or(e)),
            };
            match tag {
                b'D' => {
                    if error.is_none() {
                        rows.push(Row::parse(std::mem::take(&mut self.body))?);
                    }
                }
                b'C' => {
                    // The tag's last word is the row count (INSERT 0 5, UPDATE 3, SELECT 2...).
                    let tag = Cursor::new(&self.body).cstr()?;
                    affected = std::str::from_utf8(tag).ok().and_then(|t| t.rsplit(' ').next()?.parse().ok()).unwrap_or(0);
                }
                b'E' => {
                    let e = self.server_error();
                    error.get_or_insert(e);
                }
                b'Z' => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok((rows, affected)),
                    }
                }
                b'1' | b'2' | b'3' | b'n' | b't' | b'T' | b'I' | b's' | b'N' | b'S' | b'A' => {}
                tag => return Err(self.unexpected(tag)),
            }
        }
    }

    fn until_ready(&mut self) -> Result<(), Error> {
        while self.read()? != b'Z' {}
        Ok(())
    }

    /// The server's error in the last message read; a FATAL one means the server is closing
    /// the connection.
    fn server_error(&mut self) -> Error {
        match parse_error(&self.body) {
            Ok(db) => {
                if db.severity == "FATAL" || db.severity == "PANIC" {
                    self.closed = true;
                }
                Error::Db(db)
            }
            Err(e) => {
                self.closed = true;
                e
            }
        }
    }

    fn unexpected(&mut self, tag: u8) -> Error {
        // The conversation's state is unknown from here: the connection cannot be reused.
        self.closed = true;
        Error::Protocol(format!("unexpected message {:?} from the server", tag as char))
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn read(&mut self) -> Result<u8, Error> {
        let result = read_message(&mut self.stream, &mut self.body);
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    fn flush(&mut self) -> Result<(), Error> {
        let result = self.stream.get_mut().write_all(&self.out.buf);
        self.out.buf.clear();
        if let Err(e) = result {
            self.closed = true;
            return Err(Error::Io(e));
        }
        Ok(())
    }
}

impl Drop for Client {
    /// Says goodbye (Terminate) so the server does not log an unexpected EOF.
    fn drop(&mut self) {
        if !self.closed {
            self.out.buf.clear();
            if self.out.message(b'X', |_| {}).is_ok() {
                let _ = self.flush();
            }
        }
    }
}

/// A TCP connection to the first of `addrs` that accepts, each attempt bounded by
/// `connect_timeout`; Nagle off (every message is one write, sent at once), keepalives on.
fn connect_tcp(addrs: &[SocketAddr], config: &Config) -> Result<Stream, Error> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the host name resolves to no address");
    for addr in addrs {
        let attempt = match config.connect_timeout {
            Some(t) => TcpStream::connect_timeout(addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(Error::Connect)?;
                if config.keepalives {
                    set_keepalive(&stream);
                }
                return Ok(Stream::Tcp(stream));
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Connect(last))
}

#[cfg(unix)]
fn set_keepalive(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the size given. A failure
    // only leaves keepalives off, as on platforms without them.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
fn set_keepalive(_: &TcpStream) {}

/// Fisher-Yates with ring's random numbers (no other source of randomness is linked); should
/// the system give none, the order stays as written.
fn shuffle(items: &mut [usize]) {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    for i in (1..items.len()).rev() {
        let mut r = [0u8; 4];
        if rng.fill(&mut r).is_err() {
            return;
        }
        items.swap(i, u32::from_le_bytes(r) as usize % (i + 1));
    }
}

/// The operating system user's name: libpq's default role.
fn os_user() -> Result<String, Error> {
    #[cfg(unix)]
    {
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r writes into pwd and buf (of the length given) and sets result.
        let rc = unsafe { libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            // SAFETY: pw_name points to a NUL-terminated string inside buf.
            let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
            return Ok(name.to_string_lossy().into_owned());
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map_err(|_| Error::Config("no user given and the operating system user is unknown".into()))
}
