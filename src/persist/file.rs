//! TinyBase's file format: the store's mergeable content in wire form, with hashes, as one JSON
//! text `[[tables, tablesHlc, tablesHash], [values, valuesHlc, valuesHash]]` (objects and arrays
//! as U+FFFD-prefixed strings, deletions as U+FFFC), exactly what TinyBase's
//! `createFilePersister` writes, so either side can read the other's files.

use super::{Content, Persister, PersisterOptions, Storage};
use crate::error::{Error, Result};
use crate::mergeable::MergeableStore;
use crate::store::Store;
use crate::value::parse_json;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a TinyBase MergeableStore file: {why}", path.display()))
}

/// Writes the store's content to `path` atomically: a temporary file in the same folder is
/// written and synced, renamed over `path`, then the folder is synced, so a crash leaves either
/// the old file or the new one, never a mix.
pub fn save_file(store: &MergeableStore, path: &Path) -> io::Result<()> {
    save_text(&store.get_encoded_mergeable_content_json(), path)
}

/// [`save_file`] with the content already serialized.
pub fn save_text(content_json: &str, path: &Path) -> io::Result<()> {
    write_atomic(content_json, path).map(|_| ())
}

/// The folder a file lives in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// [`save_text`], returning the identity of the file written (what `changed` compares with).
fn write_atomic(content_json: &str, path: &Path) -> io::Result<FileStamp> {
    let dir = folder_of(path);
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path has a file name"))?;
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(content_json.as_bytes())?;
        file.sync_all()?;
        // Taken from the open file: the rename keeps the inode, size and mtime.
        let stamp = FileStamp::of(&file.metadata()?);
        drop(file);
        fs::rename(&temp, path)?;
        // The rename itself is durable only once the folder is synced (not possible on Windows).
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(stamp)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Merges the content of the file at `path` into `store`. `Ok(false)` when there is no file;
/// `Ok(true)` once merged. A file that is not valid content, whose recorded content hashes are
/// not those its stamps compute (corruption, a hand edit), or with an HLC too far in the future
/// is refused whole with an `InvalidData` error, and the store is unchanged.
pub fn load_file(store: &MergeableStore, path: &Path) -> io::Result<bool> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| invalid(path, "not UTF-8"))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    merge_text(store, &text).map_err(|why| invalid(path, why))?;
    Ok(true)
}

/// Merges file content (the JSON text of [`save_file`]) into `store`, verifying its hashes.
pub fn merge_text(store: &MergeableStore, text: &str) -> crate::Result<()> {
    merge_content(store, text).map(|_| ())
}

/// [`merge_text`], returning the content's verified hashes `(tablesHash, valuesHash)`.
pub fn merge_content(store: &MergeableStore, text: &str) -> crate::Result<(u32, u32)> {
    let recorded = match recorded_hashes(text) {
        Some(hashes) => hashes,
        None => {
            // Not the usual shape: the full parser says what is wrong with it.
            let json = parse_json(text)?;
            let hash = |i: usize| json.get(i).and_then(|part| part.get(2)).and_then(serde_json::Value::as_f64);
            match (hash(0), hash(1)) {
                (Some(t), Some(v)) => (t, v),
                _ => return Err(crate::Error::InvalidShape("content is [[tables, hlc, hash], [values, hlc, hash]]".into())),
            }
        }
    };
    let mismatch = |(t, v): (u32, u32)| {
        crate::Error::InvalidShape(format!("the recorded content hashes [{}, {}] are not the content's [{t}, {v}]", recorded.0, recorded.1))
    };
    if is_empty(store) {
        // Nothing to merge with: the content goes straight in, in a transaction rolled back if
        // its hashes are not the recorded ones (half the work of checking it aside first).
        let result = std::cell::RefCell::new(Ok((0, 0)));
        store.transaction_with(
            |_| *result.borrow_mut() = store.set_mergeable_content_json(text).map(|()| store.get_mergeable_content_hashes()),
            |_| {
                let mut result = result.borrow_mut();
                match *result {
                    Ok(hashes) if (hashes.0 as f64, hashes.1 as f64) != recorded => {
                        *result = Err(mismatch(hashes));
                        true
                    }
                    Ok(_) => match check_every_hash(store, text) {
                        Ok(()) => false,
                        Err(e) => {
                            *result = Err(e);
                            true
                        }
                    },
                    Err(_) => true,
                }
            },
        );
        return result.into_inner();
    }
    // The content is checked in a store of its own, so that nothing reaches `store` unless all of
    // it is valid and its hashes are the ones recorded.
    let check = MergeableStore::new(None);
    check.set_mergeable_content_json(text)?;
    let (t, v) = check.get_mergeable_content_hashes();
    if (t as f64, v as f64) != recorded {
        return Err(mismatch((t, v)));
    }
    check_every_hash(&check, text)?;
    store.apply_mergeable_changes_json(text)?;
    Ok((t, v))
}

/// Whether a store holds no stamp at all (a fresh store, before its first load).
fn is_empty(store: &MergeableStore) -> bool {
    static EMPTY: std::sync::OnceLock<(String, (u32, u32))> = std::sync::OnceLock::new();
    let (json, hashes) = EMPTY.get_or_init(|| {
        let fresh = MergeableStore::new(None);
        (fresh.get_mergeable_content_json(), fresh.get_mergeable_content_hashes())
    });
    store.get_mergeable_content_hashes() == *hashes && store.get_mergeable_content_json() == *json
}

/// The top-level hashes of content `[[tables, hlc, hash], [values, hlc, hash]]`, found by
/// scanning the text (the content's own parse checks everything else): the last item of each
/// of the two arrays. None when the text does not look like that.
fn recorded_hashes(text: &str) -> Option<(f64, f64)> {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut item_start = 0;
    let mut hashes = Vec::with_capacity(2);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                if depth == 2 && b == b']' {
                    hashes.push(text[item_start..i].trim().parse::<f64>().ok()?);
                }
                depth = depth.checked_sub(1)?;
            }
            b',' if depth == 2 => item_start = i + 1,
            _ => {}
        }
    }
    match hashes.as_slice() {
        [t, v] if depth == 0 && !in_string => Some((*t, *v)),
        _ => None,
    }
}

/// Checks every recorded hash, not only the two at the top: a store recomputes the hashes below
/// them from the values and HLCs, so a wrong leaf, row or table hash would otherwise load
/// silently. `loaded` holds exactly the text's content: written by this library or TinyBase, the
/// text is its encoding byte for byte (one serialization); any other text is checked level by
/// level by the incremental layout's reader.
fn check_every_hash(loaded: &MergeableStore, text: &str) -> crate::Result<()> {
    if loaded.get_encoded_mergeable_content_json() == text {
        return Ok(());
    }
    super::incremental::content_from_rows(&super::incremental::rows_from_json(text)?).map(|_| ())
}

/// Merges a plain Store's content `[tables, values]` (as [`Store::get_json`] and TinyBase's
/// persisters write it: object and array cells as U+FFFD-prefixed strings; decoded objects are
/// accepted too) into `store`: the stored cells and values are set over the store's, those only
/// the store has are kept. All or nothing.
pub fn merge_plain_text(store: &Store, text: &str) -> crate::Result<()> {
    let (tables, values) = crate::store::content_in_json(&parse_json(text)?, true)?;
    store.write(|core| {
        for (table_id, table) in &tables {
            for (row_id, row) in table {
                core.set_partial_row(table_id, row_id, row);
            }
        }
        core.set_partial_values(&values);
    })
}

// ---------------------------------------------------------------------- FileStorage

/// What identifies one version of a file: a rename (a new inode), an in-place write (size,
/// modification time to the nanosecond) or a move changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileStamp {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp { dev: meta.dev(), ino: meta.ino(), size: meta.size(), mtime: (meta.mtime(), meta.mtime_nsec()) }
    }

    #[cfg(not(unix))]
    fn of(meta: &fs::Metadata) -> FileStamp {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos() as i64));
        FileStamp { dev: 0, ino: 0, size: meta.len(), mtime }
    }
}

/// A file holding one store in TinyBase's format: a MergeableStore's wire-form content with
/// hashes, or a plain Store's `[tables, values]`. Writes are atomic and durable (see
/// [`save_text`]); the cross-process write lock is an `flock` on `<file>.lock` beside it.
pub struct FileStorage {
    path: PathBuf,
    /// Whether the temporary files of killed writers were looked for (once: see
    /// [`FileStorage::remove_stale_temps`]).
    swept: bool,
    /// The file as this storage last read or wrote it (None: absent).
    seen: Option<FileStamp>,
    /// The open lock file while the lock is held.
    lock: Option<fs::File>,
}

impl FileStorage {
    /// A storage for the file at `path` (created by the first save; the folder must exist).
    pub fn new(path: impl AsRef<Path>) -> FileStorage {
        FileStorage { path: path.as_ref().to_path_buf(), swept: false, seen: None, lock: None }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    fn io(&self, what: &str, err: io::Error) -> Error {
        Error::Io(format!("file {}: {what}: {err}", self.path.display()))
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> Error {
        Error::Corrupt(format!("file {}: {why}", self.path.display()))
    }

    fn current(&self) -> Result<Option<FileStamp>> {
        match fs::metadata(&self.path) {
            Ok(meta) => Ok(Some(FileStamp::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("cannot inspect it", e)),
        }
    }

    /// Removes the temporary files that writers killed mid-save left beside the file
    /// (`.<name>.<pid>.<n>.tmp` of a process that no longer exists): one per crash, never
    /// read, but they would pile up. Done once per storage, under the lock, so that a folder of
    /// many files is not listed on every save.
    #[cfg(unix)]
    fn remove_stale_temps(&mut self) {
        if std::mem::replace(&mut self.swept, true) {
            return;
        }
        let Some(name) = self.path.file_name() else { return };
        let prefix = format!(".{}.", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(folder_of(&self.path)) else { return };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let Some(rest) = file_name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
            let Some(pid) = rest.split_once('.').and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<i32>().ok())) else {
                continue;
            };
            if pid <= 0 || pid as u32 == std::process::id() {
                continue;
            }
            // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    #[cfg(not(unix))]
    fn remove_stale_temps(&mut self) {}

    #[cfg(unix)]
    fn try_lock(file: &fs::File) -> io::Result<bool> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this File owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
            _ => Err(err),
        }
    }

    #[cfg(not(unix))]
    fn try_lock(_file: &fs::File) -> io::Result<bool> {
        Ok(true)
    }
}

impl Storage for FileStorage {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn read(&mut self, mergeable: bool) -> Result<Option<Content>> {
        let mut file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.seen = None;
                return Ok(None);
            }
            Err(e) => return Err(self.io("cannot open it", e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| self.io("cannot read it", e))?;
        // What was read is now known, good or bad: a bad file is reported again only when it
        // changes.
        self.seen = Some(FileStamp::of(&file.metadata().map_err(|e| self.io("cannot inspect it", e))?));
        // TinyBase's auto-load creates a missing file empty (0 bytes) and its load of it is a
        // no-op: nothing is stored there yet, and writing over no bytes loses nothing.
        if bytes.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8(bytes).map_err(|_| self.corrupt("not UTF-8 text"))?;
        if text.trim().is_empty() {
            return Err(self.corrupt("empty (a TinyBase file holds JSON content)"));
        }
        Ok(Some(if mergeable { Content::Mergeable(text) } else { Content::Plain(text) }))
    }

    fn write(&mut self, content: &Content) -> Result<()> {
        let text = match content {
            Content::Mergeable(text) | Content::Plain(text) => text,
        };
        self.seen = Some(write_atomic(text, &self.path).map_err(|e| self.io("cannot write it", e))?);
        Ok(())
    }

    fn lock(&mut self, timeout: Duration) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let lock_path = self.lock_path();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| self.io(&format!("cannot open the lock file {}", lock_path.display()), e))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if Self::try_lock(&file).map_err(|e| self.io("cannot lock it", e))? {
                self.lock = Some(file);
                self.remove_stale_temps();
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Io(format!(
                    "file {}: another writer held its lock ({}) for more than {:?}",
                    self.path.display(),
                    lock_path.display(),
                    timeout
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn unlock(&mut self) -> Result<()> {
        // Closing the descriptor releases the flock.
        self.lock = None;
        Ok(())
    }

    fn changed(&mut self) -> Result<bool> {
        Ok(self.current()? != self.seen)
    }

    fn move_aside(&mut self) -> Result<String> {
        let base = self.path.as_os_str().to_os_string();
        let target = (0..)
            .map(|i| {
                let mut name = base.clone();
                name.push(if i == 0 { ".corrupt".to_string() } else { format!(".corrupt.{i}") });
                PathBuf::from(name)
            })
            .find(|p| !p.exists())
            .expect("a free name");
        fs::rename(&self.path, &target).map_err(|e| self.io(&format!("cannot rename it to {}", target.display()), e))?;
        #[cfg(unix)]
        fs::File::open(folder_of(&self.path)).and_then(|d| d.sync_all()).map_err(|e| self.io("cannot sync its folder", e))?;
        self.seen = None;
        Ok(target.display().to_string())
    }
}

/// A persister of `store` (a MergeableStore through `Deref`, or a plain Store) to the file at
/// `path` in TinyBase's format (TinyBase's `createFilePersister`).
pub fn create_file_persister(store: &Store, path: impl AsRef<Path>, options: PersisterOptions) -> Result<Persister> {
    Persister::new(store, Box::new(FileStorage::new(path)), options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tinybase-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_merges_and_refuses_bad_files() {
        let dir = temp_dir("file");
        let path = dir.join("room.json");
        let a = MergeableStore::new(Some("a"));
        assert!(!load_file(&a, &path).unwrap(), "no file yet");
        a.set_cell("pets", "fido", "species", "dog").unwrap();
        a.set_value("open", true).unwrap();
        save_file(&a, &path).unwrap();
        let b = MergeableStore::new(Some("b"));
        b.set_value("other", 1.0).unwrap();
        assert!(load_file(&b, &path).unwrap());
        assert_eq!(b.get_cell("pets", "fido", "species"), a.get_cell("pets", "fido", "species"));
        assert!(b.get_value("other").is_some(), "loading merges");

        let good = fs::read_to_string(&path).unwrap();
        let tampered = good.replace("dog", "cat");
        fs::write(&path, &tampered).unwrap();
        let c = MergeableStore::new(Some("c"));
        let err = load_file(&c, &path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("hashes"), "{err}");
        assert_eq!(c.get_mergeable_content_hashes(), MergeableStore::new(None).get_mergeable_content_hashes());
        fs::write(&path, "[1,").unwrap();
        assert!(load_file(&c, &path).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_tinybase_files() {
        // Written by TinyBase 10.0.1's createFilePersister (an object cell and a deletion).
        let text = "[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"P7o4uYi----7JQY8\",1688904453],\"o\":[\"\u{FFFD}{\\\"a\\\":[1,2]}\",\"P7o4uYj----7JQY8\",861218171]},\"\",1582795359]},\"\",1816222327]},\"\",762336777],[{\"open\":[true,\"P7o4uYk----7JQY8\",1468796195]},\"\",984249598]]";
        let s = MergeableStore::new(None);
        merge_text(&s, text).unwrap();
        assert_eq!(s.get_mergeable_content_hashes(), (762336777, 984249598));
        assert_eq!(s.get_encoded_mergeable_content_json(), text, "written back byte for byte as TinyBase writes it");
    }

    #[test]
    fn plain_content_takes_objects_in_either_form() {
        let store = Store::new();
        store.set_cell("t", "r", "kept", 1).unwrap();
        merge_plain_text(&store, "[{\"t\":{\"r\":{\"a\":{\"x\":1},\"b\":\"\u{FFFD}[1,2]\"}}},{\"v\":[true]}]").unwrap();
        assert_eq!(store.get_content_json(), "[{\"t\":{\"r\":{\"kept\":1,\"a\":{\"x\":1},\"b\":[1,2]}}},{\"v\":[true]}]");
        assert!(merge_plain_text(&store, "[{\"t\":{\"r\":{\"a\":\"\u{FFFC}\"}}},{}]").is_err(), "no deletions in content");
        assert!(merge_plain_text(&store, "[{\"t\":[]},{}]").is_err());
        assert_eq!(store.get_cell("t", "r", "kept"), Some(1.into()), "refused whole");
    }

    #[test]
    fn recorded_hashes_are_found_by_scanning() {
        let text = "[[{\"t\":[{\"r\":[{\"c\":[\"a]\\\"[\",\"H\",5]},\"\",6]},\"\",7]},\"\",1234],[{},\"\", 0 ]]";
        assert_eq!(recorded_hashes(text), Some((1234.0, 0.0)));
        assert_eq!(recorded_hashes("[[{},\"\",1]]"), None, "two parts");
        assert_eq!(recorded_hashes("[[{},\"\",1],[{},\"\",2]"), None, "truncated");
        assert_eq!(recorded_hashes("[[{},\"\",x],[{},\"\",2]]"), None);
        assert_eq!(recorded_hashes("[{},{}]"), None);
        assert_eq!(recorded_hashes("]]"), None);
    }

    #[test]
    fn file_storage_notices_every_kind_of_change() {
        let dir = temp_dir("changed");
        let path = dir.join("room.json");
        let mut storage = FileStorage::new(&path);
        assert!(!storage.changed().unwrap(), "no file, none seen");
        fs::write(&path, "[1]").unwrap();
        assert!(storage.changed().unwrap(), "created");
        assert!(matches!(storage.read(true).unwrap(), Some(Content::Mergeable(t)) if t == "[1]"));
        assert!(!storage.changed().unwrap());
        // Same size, rewritten in place: the modification time (nanoseconds) tells.
        std::thread::sleep(Duration::from_millis(5));
        fs::write(&path, "[2]").unwrap();
        assert!(storage.changed().unwrap(), "rewritten in place");
        storage.write(&Content::Mergeable("[3]".into())).unwrap();
        assert!(!storage.changed().unwrap(), "its own write");
        save_text("[4]", &path).unwrap();
        assert!(storage.changed().unwrap(), "replaced by a rename");
        fs::remove_file(&path).unwrap();
        assert!(storage.changed().unwrap(), "deleted");
        assert_eq!(storage.read(true).unwrap(), None);
        assert!(!storage.changed().unwrap());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_lock_excludes_another_holder_until_released() {
        let dir = temp_dir("lock");
        let path = dir.join("room.json");
        let (mut a, mut b) = (FileStorage::new(&path), FileStorage::new(&path));
        a.lock(Duration::from_secs(1)).unwrap();
        let err = b.lock(Duration::from_millis(30)).unwrap_err();
        assert!(matches!(&err, Error::Io(m) if m.contains("lock")), "{err}");
        a.unlock().unwrap();
        b.lock(Duration::from_millis(30)).unwrap();
        b.unlock().unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = temp_dir("badread");
        let path = dir.join("room.json");
        let mut storage = FileStorage::new(&path);
        fs::write(&path, b"").unwrap();
        assert_eq!(storage.read(true).unwrap(), None, "0 bytes hold nothing (TinyBase's auto-load leaves such a file)");
        for bytes in [&b" \n"[..], b"\xff["] {
            fs::write(&path, bytes).unwrap();
            let err = storage.read(true).unwrap_err();
            assert!(matches!(&err, Error::Corrupt(m) if m.starts_with(&format!("file {}", path.display()))), "{err}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
