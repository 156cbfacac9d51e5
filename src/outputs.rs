//! Where a run's files go, and the one way every file is written.
//!
//! Every output path is checked before anything is created, so a bad one
//! leaves no folder or file behind. A run's CSV comes into existence holding
//! its header (written under a temporary name, then renamed without
//! replacing anything), so it is never empty and never takes another run's
//! file. Whole-file writes (records, summaries, reports) go to a temporary
//! file that is then renamed over the old one: a crash leaves the old file or
//! the new one, never a torn one. Temporary names are hidden and carry the
//! writer's process id, so no run can own one, and those of a killed process
//! are removed by the next run that writes into the same folder (not those
//! still locked by a writer whose pid is another namespace's or host's).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};

use crate::callbacks::checkpoint_path;

/// Linux's NAME_MAX: the longest name one path component may have.
const NAME_MAX: usize = 255;
/// Room a temporary name needs beyond its file's name: `.` + the longest
/// sibling's addition (the model `<stem>.safetensors` adds at most 12 bytes
/// to a name without extension; the record adds `.json`) +
/// `.<pid>.<counter>.tmp`.
const TMP_EXTRA: usize = 1 + 12 + 1 + 10 + 1 + 20 + 4;

/// A run's files, the CSV created (holding its header) so that no other run takes it.
pub struct RunFiles {
    pub csv: PathBuf,
    /// `<csv>.json`: the run record beside the metrics.
    pub json: PathBuf,
}

impl RunFiles {
    /// Where the trained network goes.
    pub fn model(&self) -> PathBuf {
        model_path(&self.csv)
    }
}

pub fn record_path(csv: &Path) -> PathBuf {
    let mut s = csv.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// `<csv stem>.safetensors`: the trained network beside its metrics
/// (`runs/baseline-seed0.csv` → `runs/baseline-seed0.safetensors`).
pub fn model_path(csv: &Path) -> PathBuf {
    csv.with_extension("safetensors")
}

/// Refuses, before anything exists, a path no file of ours can be written
/// to: not UTF-8 (records name their CSV in JSON), a folder (or written as
/// one, with a trailing `/`), a name too long for its record or temporary
/// files, or a parent that is a file.
pub fn check_path(path: &Path, what: &str) -> Result<()> {
    let Some(text) = path.to_str() else {
        bail!(
            "{what} {}: not valid UTF-8; choose a UTF-8 path",
            path.display()
        );
    };
    let name = path.file_name().map(|n| n.len()).unwrap_or(0);
    if text.ends_with('/') || name == 0 || path.is_dir() {
        let folder = text.trim_end_matches('/');
        bail!("{what} {text} is a folder; give a file path such as {folder}/run.csv");
    }
    if let Some(long) = path.components().find(|c| c.as_os_str().len() > NAME_MAX) {
        bail!(
            "{what} {text}: the name '{}' is longer than {NAME_MAX} bytes",
            long.as_os_str().to_string_lossy()
        );
    }
    if name + TMP_EXTRA > NAME_MAX {
        bail!(
            "{what} {text}: the file name is {name} bytes; at most {} leaves room for its record, model and temporary files",
            NAME_MAX - TMP_EXTRA
        );
    }
    if record_path(path).is_dir() {
        bail!(
            "{what} {text}: its record {} is a folder",
            record_path(path).display()
        );
    }
    check_parent(path, what)
}

/// The nearest existing ancestor of `path` must be a folder.
fn check_parent(path: &Path, what: &str) -> Result<()> {
    for dir in path.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            return Ok(());
        }
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => bail!(
                "{what} {}: cannot create folder {}: it is a file",
                path.display(),
                dir.display()
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("{what} {}: cannot read", dir.display()));
            }
        }
    }
    Ok(())
}

/// Fails, touching nothing, if any of `csvs` cannot be written, or exists
/// (or its record does) and may not be replaced; `what` names the flag
/// they come from.
pub fn check_free(csvs: &[PathBuf], what: &str, overwrite: bool) -> Result<()> {
    for csv in csvs {
        check_path(csv, what)?;
        if !overwrite {
            for p in [csv.clone(), record_path(csv)] {
                if p.exists() {
                    bail!(
                        "{} already exists; pass --overwrite to replace it, or choose another output",
                        p.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// [`check_free`] for training runs, which also write their model
/// ([`model_path`]): it must not be the CSV itself, a folder, or (without
/// `overwrite`) an existing file.
pub fn check_free_run(csvs: &[PathBuf], what: &str, overwrite: bool) -> Result<()> {
    check_free(csvs, what, overwrite)?;
    for csv in csvs {
        check_sibling(csv, &model_path(csv), "model", what, overwrite)?;
    }
    Ok(())
}

/// [`check_free_run`] for a `train` run, which also keeps its checkpoint
/// ([`checkpoint_path`]) beside the CSV while it runs and removes it at the
/// end: a file there is replaced only with `overwrite`.
pub fn check_free_train(csv: &Path, what: &str, overwrite: bool) -> Result<()> {
    check_free_run(&[csv.to_path_buf()], what, overwrite)?;
    check_sibling(csv, &checkpoint_path(csv), "checkpoint", what, overwrite)
}

/// A file a run writes beside its CSV (`<stem>.<ext>`, its `kind`): it
/// must not be the CSV itself, a folder, or (without `overwrite`) an
/// existing file.
fn check_sibling(
    csv: &Path,
    sibling: &Path,
    kind: &str,
    what: &str,
    overwrite: bool,
) -> Result<()> {
    if sibling == csv {
        bail!(
            "{what} {}: the {kind} is written to <stem>.{}, which would replace the CSV; choose a .csv name",
            csv.display(),
            sibling.extension().unwrap_or_default().to_string_lossy()
        );
    }
    if sibling.is_dir() {
        bail!(
            "{what} {}: its {kind} {} is a folder",
            csv.display(),
            sibling.display()
        );
    }
    if !overwrite && sibling.exists() {
        bail!(
            "{} already exists; pass --overwrite to replace it, or choose another output",
            sibling.display()
        );
    }
    Ok(())
}

/// Fails, touching nothing, if a single output file cannot be written to
/// `path`, or exists and may not be replaced.
pub fn check_output(path: &Path, what: &str, overwrite: bool) -> Result<()> {
    let text = path.display();
    if path.as_os_str().is_empty() || path.to_string_lossy().ends_with('/') || path.is_dir() {
        bail!("{what} {text} is a folder; give a file path");
    }
    check_parent(path, what)?;
    if !overwrite && path.exists() {
        bail!("{text} already exists; pass --overwrite to replace it, or choose another output");
    }
    Ok(())
}

/// Creates `csv` holding `header` (with `overwrite`, replaces it).
pub fn claim_path(csv: &Path, header: &[u8], overwrite: bool) -> Result<RunFiles> {
    check_free_run(&[csv.to_path_buf()], "output", overwrite)?;
    make_parent(csv)?;
    if !create_with(csv, header, overwrite)? {
        bail!(
            "{} already exists; pass --overwrite to replace it",
            csv.display()
        );
    }
    Ok(RunFiles {
        csv: csv.to_path_buf(),
        json: record_path(csv),
    })
}

/// `out` as given, or else the first free `runs/<name>-seed<N>[-k].csv`.
pub fn claim(
    out: Option<&Path>,
    name: &str,
    seed: u64,
    header: &[u8],
    overwrite: bool,
) -> Result<RunFiles> {
    if let Some(csv) = out {
        return claim_path(csv, header, overwrite);
    }
    for k in 0.. {
        let stem = if k == 0 {
            format!("{name}-seed{seed}")
        } else {
            format!("{name}-seed{seed}-{k}")
        };
        let csv = Path::new("runs").join(format!("{stem}.csv"));
        let siblings = [record_path(&csv), model_path(&csv), checkpoint_path(&csv)];
        if csv.exists() || siblings.iter().any(|p| p.exists()) {
            continue;
        }
        check_path(&csv, "output")?;
        make_parent(&csv)?;
        if create_with(&csv, header, false)? {
            return Ok(RunFiles {
                json: record_path(&csv),
                csv,
            });
        }
    }
    unreachable!("the loop returns or fails")
}

/// Creates a folder that did not exist: the first free `base`, `base-1`, …
/// Two commands started together never get the same one.
pub fn claim_new_dir(base: &Path) -> Result<PathBuf> {
    for k in 0.. {
        let dir = if k == 0 {
            base.to_path_buf()
        } else {
            let mut s = base.as_os_str().to_owned();
            s.push(format!("-{k}"));
            PathBuf::from(s)
        };
        make_parent(&dir)?;
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create folder {}", dir.display()));
            }
        }
    }
    unreachable!("the loop returns or fails")
}

pub fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display())),
        _ => Ok(()),
    }
}

/// A hidden name beside `path` that no run's output can have and no other
/// writer uses at the same time.
fn temporary(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Removes the temporary files a killed process left in `path`'s folder:
/// once per folder and process, since a sweep rewrites thousands of files
/// there and listing the folder for each would cost more than training.
fn remove_stale_temporaries(path: &Path) {
    static CLEANED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    if cleaned.iter().any(|d| d == dir) {
        return;
    }
    cleaned.push(dir.to_path_buf());
    let Ok(entries) = dir.read_dir() else { return };
    for entry in entries.flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(temporary_owner)
            && !process_exists(pid)
            && !held_elsewhere(&entry.path())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a temporary whose pid is not alive here is still being written:
/// by a process in another pid namespace (a container) or on another host
/// sharing the folder, whose pid means nothing here. Every writer holds a
/// lock on its temporary until it is renamed ([`create_temporary`]).
fn held_elsewhere(tmp: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(tmp) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; the lock goes with it.
    (unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0)
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Creates the temporary `tmp`, locked while its descriptor is open, so
/// that no other process takes it for a killed writer's (see
/// [`held_elsewhere`]).
fn create_temporary(tmp: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    // SAFETY: flock on the descriptor just opened. Where the file system
    // has no such locks the pid alone says whether its writer lives.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok(file)
}

/// The process that wrote a temporary name `.<name>.<pid>.<k>.tmp`.
fn temporary_owner(file: &str) -> Option<i32> {
    let rest = file.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, k) = rest.rsplit_once('.')?;
    let (name, pid) = rest.rsplit_once('.')?;
    k.parse::<u64>().ok()?;
    let pid = pid.parse::<i32>().ok()?;
    (!name.is_empty() && pid > 0).then_some(pid)
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    (unsafe { libc::kill(pid, 0) } == 0)
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Writes `bytes` to a temporary file beside `path`, removed again if the
/// write fails; its open file keeps it locked until the caller has renamed it.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<(PathBuf, std::fs::File)> {
    remove_stale_temporaries(path);
    let tmp = temporary(path);
    let written = create_temporary(&tmp).and_then(|mut f| f.write_all(bytes).map(|()| f));
    match written {
        Ok(file) => Ok((tmp, file)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e).with_context(|| format!("cannot write {}", path.display()))
        }
    }
}

/// Replaces `path` with `bytes` in one step: readers see the old file or the
/// whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, _held) = write_temporary(path, bytes)?;
    std::fs::rename(&tmp, path).or_else(|e| {
        let _ = std::fs::remove_file(&tmp);
        Err(e).with_context(|| format!("cannot write {}", path.display()))
    })
}

/// A file written as a stream that appears under its name only when
/// complete ([`Pending::commit`]): until then it is a hidden temporary,
/// removed if the writer fails or is dropped, so a failed command leaves
/// no output behind.
pub struct Pending {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Pending {
    /// Starts writing `path` (its folder is created if missing).
    pub fn create(path: &Path) -> Result<Self> {
        make_parent(path)?;
        remove_stale_temporaries(path);
        let tmp = temporary(path);
        let file =
            create_temporary(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Pending {
            path: path.to_path_buf(),
            tmp,
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Puts the whole file under its name; without `overwrite`, never
    /// replacing a file that appeared meanwhile.
    pub fn commit(mut self, overwrite: bool) -> Result<()> {
        let file = self
            .file
            .take()
            .expect("a pending file is open until committed");
        // Open (and so locked) until renamed.
        let _held = file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all().map(|()| f))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let done = if overwrite {
            std::fs::rename(&self.tmp, &self.path)
        } else {
            rename_no_replace(&self.tmp, &self.path)
        };
        match done {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => bail!(
                "{} already exists; pass --overwrite to replace it",
                self.path.display()
            ),
            r => r.with_context(|| format!("cannot write {}", self.path.display())),
        }
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().map_or(Ok(0), |f| f.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Files and folders this process holds (see [`hold`]), kept open until it
/// ends.
static HELD: std::sync::Mutex<Vec<((u64, u64), std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// At most this many held at once (see [`hold`]).
const MAX_HELD: usize = 64;

/// Makes `path` (a run's CSV, or a sweep's folder) this process's to write
/// until it ends: two processes appending to one CSV, or one cutting it back
/// (`resume`) while another appends, would interleave their rows. The hold
/// is an exclusive `flock`, which the kernel drops when the process ends,
/// however it ends, so a killed run never leaves one behind. Where the file
/// system has no such locks the run goes on unheld, as it did before.
pub fn hold(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    // A grid of thousands of settings holds a folder each: past MAX_HELD
    // the rest go unheld, leaving descriptors for the files the run writes.
    // Every process holds a grid's folders in the same order, so a second
    // one is still refused at the first.
    if HELD.lock().map_or(0, |h| h.len()) >= MAX_HELD {
        return Ok(());
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot open {}", path.display()))?;
    // By file, not name: a CSV replaced under its name is another file.
    let id = (meta.dev(), meta.ino());
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|(h, _)| *h == id) {
        return Ok(());
    }
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            bail!(
                "{} is being written by another binclass process; wait for it to end, or choose another output",
                path.display()
            );
        }
    }
    held.push((id, file));
    Ok(())
}

/// Creates `path` holding `bytes` in one step; `false` when it exists and
/// may not be replaced.
fn create_with(path: &Path, bytes: &[u8], overwrite: bool) -> Result<bool> {
    if overwrite {
        write_atomic(path, bytes)?;
        return Ok(true);
    }
    let (tmp, _held) = write_temporary(path, bytes)?;
    let result = rename_no_replace(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// A hard link never replaces an existing name; the temporary is removed
/// by the caller either way.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)
}

/// Writes `text` to stdout (a failure as [`stdout_failed`] has it).
pub fn stdout(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) => stdout_failed(&e),
        Ok(()) => Ok(()),
    }
}

/// What a failed write to stdout means: a reader that closed the pipe early
/// (`| head`) is not an error; anything else is, named as stdout's.
pub fn stdout_failed(e: &std::io::Error) -> Result<()> {
    match e.kind() {
        ErrorKind::BrokenPipe => Ok(()),
        _ => bail!("cannot write to stdout: {e}"),
    }
}

/// Progress and messages on stderr. A closed or full stderr must not stop a
/// run whose files are fine, so what cannot be written is dropped.
pub fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.write_all(b"\n");
}

/// Everything below `dir`, folders after their contents; links are listed,
/// not followed.
pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in dir
        .read_dir()
        .with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            walk(&path, out)?;
        }
        out.push(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_holds_its_bytes_from_the_moment_it_exists_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        assert!(create_with(&p, b"head\r\n", false).unwrap());
        assert!(!create_with(&p, b"other\r\n", false).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"head\r\n");
        assert!(create_with(&p, b"new\r\n", true).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"new\r\n");
        let left: Vec<_> = dir.path().read_dir().unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file stays behind");
    }

    #[test]
    fn only_our_temporary_names_have_an_owner() {
        assert_eq!(temporary_owner(".a.csv.json.4242.7.tmp"), Some(4242));
        for other in [
            ".a.tmp",
            "a.csv.1.2.tmp",
            ".1.2.tmp",
            ".a.x.2.tmp",
            ".a.csv.3.tmp",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv.json");
        // pid 2^22 + 1 is above Linux's pid_max ceiling: never a live process.
        let dead = dir.path().join(".a.csv.json.4194305.0.tmp");
        let live = dir
            .path()
            .join(format!(".a.csv.json.{}.7.tmp", std::process::id()));
        std::fs::write(&dead, "").unwrap();
        std::fs::write(&live, "").unwrap();
        write_atomic(&p, b"{}").unwrap();
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn bad_paths_are_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let long = "x".repeat(243) + ".csv";
        std::fs::create_dir(d.join("c.csv.json")).unwrap();
        std::fs::write(d.join("file"), "").unwrap();
        for (bad, says) in [
            (d.join("a/b/x.csv/"), "is a folder"),
            (
                d.join("a").join("y".repeat(300)).join("x.csv"),
                "longer than 255",
            ),
            (d.join(&long), "leaves room"),
            (d.join("c.csv"), "is a folder"),
            (d.join("file/x.csv"), "it is a file"),
        ] {
            let err = check_path(&bad, "--out").unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        use std::os::unix::ffi::OsStrExt;
        let bytes = d.join(std::ffi::OsStr::from_bytes(b"\xff.csv"));
        assert!(
            check_path(&bytes, "--out")
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert!(!d.join("a").exists());
    }
}
