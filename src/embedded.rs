//! What `reproduce` and `compare` read beyond their own folders, built into
//! the binary (`build.rs` lists it): the figure scripts and the Keras
//! reference runs. A binary that is installed, copied to a cluster or built
//! from a clone since removed still draws figures and compares with Keras.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The embedded Keras reference, where [`root`] writes it.
pub const REFERENCE: &str = "reference/keras";

/// The folder holding the embedded files on disk, written once per content
/// under the user's cache: the figure scripts run as files, and the
/// reference is read as any `--reference DIR` is. The folder is named for a
/// digest of its content, so binaries of other versions never share one,
/// and it appears whole (renamed into place) or not at all.
pub fn root() -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    root_in(&cache.join("binclass"))
}

fn root_in(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(format!("embedded-{:08x}", digest()));
    if is_whole(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".embedded-")
        .tempdir_in(cache)
        .with_context(|| format!("cannot write into {}", cache.display()))?;
    for (rel, bytes) in FILES {
        let path = tmp.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))
            .and_then(|()| std::fs::write(&path, bytes))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if dir.exists() {
        // Not whole (a file of it was removed or changed by hand): replaced.
        let _ = std::fs::remove_dir_all(&dir);
    }
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            let _ = tmp.keep();
            Ok(dir)
        }
        // Another binclass wrote it first; `tmp` is removed on drop.
        Err(_) if is_whole(&dir) => Ok(dir),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", dir.display())),
    }
}

/// Every embedded file present at its length.
fn is_whole(dir: &Path) -> bool {
    FILES.iter().all(|(rel, bytes)| {
        std::fs::metadata(dir.join(rel)).is_ok_and(|m| m.len() == bytes.len() as u64)
    })
}

/// CRC-32 over every embedded name and content.
fn digest() -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (rel, bytes) in FILES {
        h.update(rel.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reference/keras in the repository is the source of truth: the copy
    /// built in holds exactly its files, byte for byte.
    #[test]
    fn the_embedded_reference_and_scripts_equal_the_repository_files() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = vec![];
        let mut stack: Vec<PathBuf> = SOURCES.iter().map(|s| repo.join(s)).collect();
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                on_disk.push(p.strip_prefix(repo).unwrap().to_str().unwrap().to_string());
            }
        }
        on_disk.sort();
        assert!(SOURCES.contains(&REFERENCE) && SOURCES.contains(&"scripts/plot.py"));
        let embedded: Vec<String> = FILES.iter().map(|(r, _)| r.to_string()).collect();
        assert_eq!(embedded, on_disk);
        for (rel, bytes) in FILES {
            assert_eq!(&std::fs::read(repo.join(rel)).unwrap(), bytes, "{rel}");
        }
        assert!(embedded.iter().filter(|r| r.ends_with(".csv")).count() > 400);
    }

    #[test]
    fn the_files_are_written_whole_once_and_rewritten_when_damaged() {
        let cache = tempfile::tempdir().unwrap();
        let dir = root_in(cache.path()).unwrap();
        assert!(dir.starts_with(cache.path()));
        assert!(is_whole(&dir));
        let csv = dir.join(FILES.iter().find(|(r, _)| r.ends_with(".csv")).unwrap().0);
        std::fs::write(&csv, "damaged").unwrap();
        assert_eq!(root_in(cache.path()).unwrap(), dir);
        assert!(is_whole(&dir));
        let names: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary folder is left");
    }
}
