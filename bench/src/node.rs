//! TinyBase's side, through node: tests/interop/bench.mjs (W1-W7) and bench_w8.mjs (W8), with
//! the pinned TinyBase installed from the lock file when it is missing, a time limit per round,
//! and each round's peak RSS (node and the copy of itself it re-executes with --expose-gc).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One figure as bench.mjs prints it: min/median/max over its runs.
#[derive(Clone, Debug)]
pub struct NodeFigure {
    pub workload: String,
    pub unit: String,
    pub runs: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// What one node round gave: its figures and the peak RSS of the process tree.
pub struct NodeRound {
    pub figures: Vec<NodeFigure>,
    pub peak_rss: Option<u64>,
    pub seconds: f64,
}

/// tests/interop in this checkout.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// `node --version`, or why node cannot be used.
pub fn node_version() -> Result<String, String> {
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!("`node --version` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("node is not installed or not on PATH ({e}): TinyBase's side cannot run")),
    }
}

/// The installed TinyBase's version (its package.json).
pub fn tinybase_version() -> Option<String> {
    let text = std::fs::read_to_string(interop_dir().join("node_modules/tinybase/package.json")).ok()?;
    let json = tinybase::value::parse_json(&text).ok()?;
    json.get("version")?.as_str().map(str::to_string)
}

/// Installs the pinned TinyBase (`npm ci` from tests/interop's lock file) when it is missing.
pub fn ensure_tinybase() -> Result<(), String> {
    let dir = interop_dir();
    if dir.join("node_modules/tinybase/package.json").exists() {
        return Ok(());
    }
    eprintln!("tinybase-bench: TinyBase is not installed; running `npm ci --no-audit --no-fund` in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("npm is not installed or not on PATH ({e}): cannot install TinyBase"))?;
    if !status.success() || !dir.join("node_modules/tinybase/package.json").exists() {
        return Err(format!("`npm ci` in {} failed ({status})", dir.display()));
    }
    Ok(())
}

/// Runs `node SCRIPT ARGS` with `BENCH_SKIP=skip`, killed with its whole process group after
/// `limit`. Ok holds the figures it printed; Err says why it stopped.
pub fn run(script: &str, args: &[String], skip: &str, limit: Duration) -> Result<NodeRound, String> {
    use std::os::unix::process::CommandExt;
    let t0 = Instant::now();
    let mut child = Command::new("node")
        .arg(interop_dir().join(script))
        .args(args)
        .env("BENCH_SKIP", skip)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // wait4 rather than Child::wait: its rusage holds the peak RSS of node and of the child
        // node it waited for (bench.mjs re-executes itself with --expose-gc).
        // SAFETY: pid is our child; status and usage are valid for writing.
        let r = unsafe { libc::wait4(pid, &mut status, if timed_out { 0 } else { libc::WNOHANG }, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
        }
        if !timed_out && t0.elapsed() > limit {
            // SAFETY: signals our own child's process group (process_group(0) above).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            timed_out = true;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let text = reader.join().unwrap_or_default();
    let seconds = t0.elapsed().as_secs_f64();
    if timed_out {
        return Err(format!("stopped at the time limit of {} s", limit.as_secs()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let how = if libc::WIFSIGNALED(status) {
            format!("killed by signal {} (out of memory?)", libc::WTERMSIG(status))
        } else {
            format!("exit status {}", libc::WEXITSTATUS(status))
        };
        return Err(format!("{script} failed after {seconds:.0} s: {how}"));
    }
    let figures = text.lines().filter_map(parse_figure).collect();
    Ok(NodeRound { figures, peak_rss: Some(usage.ru_maxrss as u64 * 1024), seconds })
}

fn parse_figure(line: &str) -> Option<NodeFigure> {
    let v = tinybase::value::parse_json(line).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
    let median = f("median").or_else(|| f("value"))?;
    Some(NodeFigure {
        workload: s("workload")?,
        unit: s("unit")?,
        runs: f("runs").unwrap_or(1.0) as usize,
        min: f("min").unwrap_or(median),
        median,
        max: f("max").unwrap_or(median),
    })
}
