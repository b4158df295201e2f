//! Connection strings: libpq's `key=value` form and `postgres://` / `postgresql://` URLs, with
//! the options the previous client (rust-postgres) accepted, so every DSN that worked still does.

use super::Error;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A folder holding the server's unix socket (`.s.PGSQL.<port>`): a host starting with `/`.
    Unix(PathBuf),
}

/// A parsed connection string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The hosts to try in turn.
    pub hosts: Vec<Host>,
    /// Numeric addresses used instead of resolving `hosts` (one per host when both are given).
    pub hostaddrs: Vec<IpAddr>,
    /// One port for every host, or one per host; none means 5432.
    pub ports: Vec<u16>,
    /// The role to log in as (default: the operating system user).
    pub user: Option<String>,
    /// The password, when the server asks for one.
    pub password: Option<Vec<u8>>,
    /// The database (the server defaults it to the user name).
    pub dbname: Option<String>,
    /// Command-line options for the server process (`-c name=value ...`).
    pub options: Option<String>,
    /// Shown in `pg_stat_activity`.
    pub application_name: Option<String>,
    /// How long each connection attempt (per address) may take; None: the system's.
    pub connect_timeout: Option<Duration>,
    /// TCP keepalives (on unless `keepalives=0`).
    pub keepalives: bool,
    /// `target_session_attrs=read-write`: skip servers whose sessions are read-only.
    pub read_write: bool,
    /// `load_balance_hosts=random`: try the hosts in a random order.
    pub random_order: bool,
    /// `sslmode=require`: TLS is required, which this client cannot do (connecting then fails).
    pub require_tls: bool,
}

impl Config {
    /// The first host (for describing the connection), if any.
    pub fn first_host(&self) -> Option<&Host> {
        self.hosts.first()
    }

    /// The first port, or 5432.
    pub fn first_port(&self) -> u16 {
        self.ports.first().copied().unwrap_or(5432)
    }

    /// Applies one `key=value` option (the keys libpq and rust-postgres share).
    fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let invalid = || Error::Config(format!("invalid value for option `{key}`"));
        match key {
            "user" => self.user = Some(value.into()),
            "password" => self.password = Some(value.as_bytes().to_vec()),
            "dbname" => self.dbname = Some(value.into()),
            "options" => self.options = Some(value.into()),
            "application_name" => self.application_name = Some(value.into()),
            "host" => self.hosts.extend(value.split(',').map(host)),
            "hostaddr" => {
                for addr in value.split(',') {
                    self.hostaddrs.push(addr.parse().map_err(|_| invalid())?);
                }
            }
            "port" => {
                for port in value.split(',') {
                    self.ports.push(if port.is_empty() { 5432 } else { port.parse().map_err(|_| invalid())? });
                }
            }
            "connect_timeout" => {
                // libpq: zero or a negative number waits indefinitely.
                let seconds = value.parse::<i64>().map_err(|_| invalid())?;
                self.connect_timeout = (seconds > 0).then(|| Duration::from_secs(seconds as u64));
            }
            "keepalives" => self.keepalives = value.parse::<u64>().map_err(|_| invalid())? != 0,
            "sslmode" => match value {
                "disable" | "prefer" => self.require_tls = false,
                "require" => self.require_tls = true,
                _ => return Err(invalid()),
            },
            "target_session_attrs" => match value {
                "any" => self.read_write = false,
                "read-write" => self.read_write = true,
                _ => return Err(invalid()),
            },
            // Channel binding needs TLS: "require" can never be met here.
            "channel_binding" => match value {
                "disable" | "prefer" => {}
                "require" => return Err(Error::Config("channel_binding=require needs TLS, which this client does not have".into())),
                _ => return Err(invalid()),
            },
            "load_balance_hosts" => match value {
                "disable" => self.random_order = false,
                "random" => self.random_order = true,
                _ => return Err(invalid()),
            },
            // Accepted as before, with no effect on a connection without TLS or with the
            // system's keepalive timings.
            "sslnegotiation" => match value {
                "postgres" | "direct" => {}
                _ => return Err(invalid()),
            },
            "tcp_user_timeout" | "keepalives_idle" | "keepalives_interval" | "keepalives_retries" => {
                value.parse::<i64>().map_err(|_| invalid())?;
            }
            _ => return Err(Error::Config(format!("unknown option `{key}`"))),
        }
        Ok(())
    }

    /// Parses libpq's `key=value key2='quoted value'` form.
    fn parse_key_values(s: &str) -> Result<Config, Error> {
        let mut config = Config { keepalives: true, ..Config::default() };
        let mut chars = s.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.peek().is_none() {
                return Ok(config);
            }
            let mut key = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                key.push(c);
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if key.is_empty() || chars.next() != Some('=') {
                return Err(Error::Config(format!("expected `key=value` at {:?}", chars.collect::<String>())));
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut value = String::new();
            if chars.next_if_eq(&'\'').is_some() {
                // Quoted: up to the closing quote; \' and \\ stand for themselves.
                loop {
                    match chars.next() {
                        None => return Err(Error::Config(format!("unterminated quoted value of `{key}`"))),
                        Some('\'') => break,
                        Some('\\') => value.push(chars.next().ok_or_else(|| Error::Config("unterminated escape".into()))?),
                        Some(c) => value.push(c),
                    }
                }
            } else {
                // Unquoted: up to whitespace; a backslash escapes the next character.
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    if c == '\\' {
                        value.push(chars.next().ok_or_else(|| Error::Config("unterminated escape".into()))?);
                    } else {
                        value.push(c);
                    }
                }
            }
            config.set(&key, &value)?;
        }
    }

    /// Parses `postgres[ql]://[user[:password]@][host[:port][,...]][/dbname][?key=value&...]`.
    fn parse_url(rest: &str) -> Result<Config, Error> {
        let mut config = Config { keepalives: true, ..Config::default() };
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (before_query, None),
        };
        // The last '@' ends the user info: a password may hold '@' unescaped.
        let hosts = match authority.rsplit_once('@') {
            Some((info, hosts)) => {
                let (user, password) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                if !user.is_empty() {
                    config.user = Some(decode_utf8(user)?);
                }
                if let Some(p) = password {
                    config.password = Some(percent_decode(p)?);
                }
                hosts
            }
            None => authority,
        };
        if !hosts.is_empty() {
            let mut ports = Vec::new();
            let mut any_port = false;
            for chunk in hosts.split(',') {
                let (name, port) = split_port(chunk)?;
                any_port |= port.is_some();
                ports.push(port);
                if !name.is_empty() {
                    config.hosts.push(host(&decode_utf8(name)?));
                }
            }
            if any_port {
                config.ports = ports.into_iter().map(|p| p.unwrap_or(5432)).collect();
            }
        }
        if let Some(db) = path.filter(|p| !p.is_empty()) {
            config.dbname = Some(decode_utf8(db)?);
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| Error::Config(format!("expected `key=value` in the URL, not {pair:?}")))?;
            config.set(&decode_utf8(key)?, &decode_utf8(value)?)?;
        }
        Ok(config)
    }
}

impl FromStr for Config {
    type Err = Error;

    /// A `postgres://` / `postgresql://` URL, or a libpq `key=value` string.
    fn from_str(s: &str) -> Result<Config, Error> {
        match s.strip_prefix("postgresql://").or_else(|| s.strip_prefix("postgres://")) {
            Some(rest) => Config::parse_url(rest),
            None => Config::parse_key_values(s),
        }
    }
}

fn host(name: &str) -> Host {
    if name.starts_with('/') {
        Host::Unix(PathBuf::from(name))
    } else {
        Host::Tcp(name.to_string())
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` (the port still percent-encoded text).
fn split_port(chunk: &str) -> Result<(&str, Option<u16>), Error> {
    let parse = |p: &str| p.parse::<u16>().map_err(|_| Error::Config(format!("invalid port {p:?} in the URL")));
    if let Some(v6) = chunk.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| Error::Config("unclosed `[` in the URL's host".into()))?;
        return match after {
            "" => Ok((addr, None)),
            _ => Ok((addr, Some(parse(after.strip_prefix(':').ok_or_else(|| Error::Config("junk after `]`".into()))?)?))),
        };
    }
    match chunk.rsplit_once(':') {
        Some((name, "")) => Ok((name, None)),
        Some((name, port)) => Ok((name, Some(parse(port)?))),
        None => Ok((chunk, None)),
    }
}

/// Decodes `%XX` escapes.
fn percent_decode(s: &str) -> Result<Vec<u8>, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| Error::Config(format!("invalid percent-encoding in {s:?}")))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_utf8(s: &str) -> Result<String, Error> {
    String::from_utf8(percent_decode(s)?).map_err(|_| Error::Config(format!("{s:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Config {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn key_value_strings() {
        let c = parse("host=127.0.0.1 port=5433 user=tinybase dbname=tinybase_test");
        assert_eq!(c.hosts, vec![Host::Tcp("127.0.0.1".into())]);
        assert_eq!(c.ports, vec![5433]);
        assert_eq!(c.user.as_deref(), Some("tinybase"));
        assert_eq!(c.dbname.as_deref(), Some("tinybase_test"));
        assert!(c.keepalives && c.connect_timeout.is_none() && c.password.is_none());

        let c = parse("  user = 'o\\'brien'   password='a b\\\\c' application_name=x\\ y connect_timeout=5 ");
        assert_eq!(c.user.as_deref(), Some("o'brien"));
        assert_eq!(c.password.as_deref(), Some(&b"a b\\c"[..]));
        assert_eq!(c.application_name.as_deref(), Some("x y"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(parse("dbname=''").dbname.as_deref(), Some(""));
        assert_eq!(parse("connect_timeout=0").connect_timeout, None);
        assert_eq!(parse("").hosts, vec![]);

        let c = parse("host=/tmp/pg,db.example hostaddr=10.0.0.1,::1 port=,6000");
        assert_eq!(c.hosts, vec![Host::Unix("/tmp/pg".into()), Host::Tcp("db.example".into())]);
        assert_eq!(c.hostaddrs, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(c.ports, vec![5432, 6000]);
        assert!(parse("sslmode=require").require_tls);
        assert!(parse("target_session_attrs=read-write keepalives=0").read_write);
        assert!(parse("load_balance_hosts=random").random_order);
    }

    #[test]
    fn bad_key_value_strings() {
        for bad in [
            "host=127.0.0.1 port=notaport",
            "nonsense=1",
            "user='unterminated",
            "user",
            "=x",
            "user=a\\",
            "sslmode=verify-full",
            "connect_timeout=soon",
            "hostaddr=not-an-ip",
            "channel_binding=require",
        ] {
            assert!(matches!(bad.parse::<Config>(), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let c = parse("postgresql://tb:s3cret@db.example:5433/rooms?sslmode=disable");
        assert_eq!(c.hosts, vec![Host::Tcp("db.example".into())]);
        assert_eq!(c.ports, vec![5433]);
        assert_eq!(c.user.as_deref(), Some("tb"));
        assert_eq!(c.password.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(c.dbname.as_deref(), Some("rooms"));

        let c = parse("postgres://us%40er:p%3Aw@d@%2Fvar%2Frun%2Fpostgresql/my%20db?application_name=a%26b&connect_timeout=2");
        assert_eq!(c.user.as_deref(), Some("us@er"));
        assert_eq!(c.password.as_deref(), Some(&b"p:w@d"[..]));
        assert_eq!(c.hosts, vec![Host::Unix("/var/run/postgresql".into())]);
        assert_eq!(c.dbname.as_deref(), Some("my db"));
        assert_eq!(c.application_name.as_deref(), Some("a&b"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));

        let c = parse("postgres://h1:1,[::1]:2,h3/db");
        assert_eq!(c.hosts, vec![Host::Tcp("h1".into()), Host::Tcp("::1".into()), Host::Tcp("h3".into())]);
        assert_eq!(c.ports, vec![1, 2, 5432]);

        let c = parse("postgres:///db?host=/tmp/sock&port=7000&user=me");
        assert_eq!(c.hosts, vec![Host::Unix("/tmp/sock".into())]);
        assert_eq!(c.ports, vec![7000]);
        assert_eq!(c.user.as_deref(), Some("me"));
        let c = parse("postgres://localhost");
        assert_eq!((c.hosts.len(), c.ports.len(), c.dbname), (1, 0, None));

        for bad in ["postgres://h:port/db", "postgres://h/db?x", "postgres://h/db?bogus=1", "postgres://%zz@h", "postgres://[::1/db"] {
            assert!(matches!(bad.parse::<Config>(), Err(Error::Config(_))), "{bad}");
        }
    }
}
