//! TinyBase's file format: the store's mergeable content in wire form, with hashes, as one JSON
//! text `[[tables, tablesHlc, tablesHash], [values, valuesHlc, valuesHash]]` (objects and arrays
//! as U+FFFD-prefixed strings, deletions as U+FFFC), exactly what TinyBase's
//! `createFilePersister` writes, so either side can read the other's files.

use crate::mergeable::MergeableStore;
use crate::value::parse_json;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
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
        drop(file);
        fs::rename(&temp, path)?;
        // The rename itself is durable only once the folder is synced (not possible on Windows).
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
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
    let recorded = {
        let json = parse_json(text)?;
        let hash = |i: usize| json.get(i).and_then(|part| part.get(2)).and_then(serde_json::Value::as_f64);
        match (hash(0), hash(1)) {
            (Some(t), Some(v)) => (t, v),
            _ => return Err(crate::Error::InvalidShape("content is [[tables, hlc, hash], [values, hlc, hash]]".into())),
        }
    };
    // The content is checked in a store of its own, so that nothing reaches `store` unless all of
    // it is valid and its hashes are the ones recorded.
    let check = MergeableStore::new(None);
    check.set_mergeable_content_json(text)?;
    let (t, v) = check.get_mergeable_content_hashes();
    if (t as f64, v as f64) != recorded {
        return Err(crate::Error::InvalidShape(format!(
            "the recorded content hashes [{}, {}] are not the content's [{t}, {v}]",
            recorded.0, recorded.1
        )));
    }
    store.apply_mergeable_changes_json(text)
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
}
