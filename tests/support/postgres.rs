//! A PostgreSQL server for the tests that need one: `TB_TEST_POSTGRES_DSN` when set (the test
//! command or CI started one), otherwise a throwaway server started through `scripts/pg.sh` in a
//! temporary folder and stopped when the test binary exits, whatever the outcome.
//!
//! No PostgreSQL is a test failure with a message saying what to install, never a silent skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A server started by [`TestPostgres::start`]; dropping it stops the server and removes its folder.
pub struct TestPostgres {
    dsn: String,
    dir: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh")
}

impl TestPostgres {
    /// Starts a fresh server in a new folder under the temporary directory. Panics, saying why
    /// and what to install, when it cannot start.
    pub fn start() -> TestPostgres {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Short and under /tmp: the unix socket lives in the folder (paths of at most 107 bytes),
        // and when root runs the tests the server runs as `postgres`, which must reach it.
        let dir = std::env::temp_dir().join(format!(
            "tb-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let output = Command::new("bash").arg(script()).arg("start").arg(&dir).output();
        let output = match output {
            Ok(o) => o,
            Err(e) => panic!("could not run {}: {e}", script().display()),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let dsn = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export TB_TEST_POSTGRES_DSN='")?.strip_suffix('\''))
            .map(str::to_string);
        match dsn {
            Some(dsn) if output.status.success() => TestPostgres { dsn, dir },
            _ => {
                let _ = Command::new("bash").arg(script()).arg("stop").arg(&dir).status();
                panic!(
                    "these tests need a PostgreSQL server and none could be started.\n\
                     Either set TB_TEST_POSTGRES_DSN to a server's connection string, or install \
                     Debian's server package (apt-get install postgresql; scripts/test-all.sh does).\n\
                     scripts/pg.sh said:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            }
        }
    }

    /// The server's connection string (`host=127.0.0.1 port=N user=... dbname=...`).
    pub fn dsn(&self) -> &str {
        &self.dsn
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).status();
    }
}

static SHARED: Mutex<Option<TestPostgres>> = Mutex::new(None);

extern "C" fn stop_shared() {
    let server = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(server);
}

/// The connection string every test of this binary shares: `TB_TEST_POSTGRES_DSN` when set,
/// otherwise one server started on first use and stopped when the process exits (the test
/// harness exits through `exit`, passing or failing, which runs `atexit` handlers).
pub fn dsn() -> String {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        if let Ok(dsn) = std::env::var("TB_TEST_POSTGRES_DSN") {
            if !dsn.trim().is_empty() {
                return dsn;
            }
        }
        let server = TestPostgres::start();
        let dsn = server.dsn().to_string();
        *SHARED.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
        // SAFETY: registers a plain function without captures; it only takes the server out of
        // a static and drops it.
        unsafe { libc::atexit(stop_shared) };
        dsn
    })
    .clone()
}

/// A room name no other test (nor an earlier run against the same server) uses.
pub fn unique_room(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{name}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}
