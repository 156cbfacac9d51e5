//! The one way every file is written, and every output claimed.
//!
//! Every output path is checked before anything is created, so a bad one
//! leaves no folder or file behind. A run's CSV comes into existence holding
//! its header (written without a name, then linked into place without
//! replacing anything), so it is never empty and never takes another run's
//! file. Whole-file writes (records, summaries, reports) go to a temporary
//! file that is then renamed over the old one: a crash leaves the old file
//! or the new one, never a torn one. Temporaries have no name until they
//! are whole (Linux's `O_TMPFILE`), so a killed process leaves none unless
//! killed between the link and the rename that put one in place; where a
//! file system cannot do that they are `tempfile`'s, removed when dropped.
//! A program may delete only what it can prove it created: a temporary one
//! left is removed only by the next command that may replace its file (a
//! run's `--overwrite` or `resume`, its folder's `--overwrite` or
//! `--resume`), never by a pattern matched anywhere else.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::layout;

/// Linux's NAME_MAX: the longest name one path component may have.
const NAME_MAX: usize = 255;
/// Room a temporary name needs beyond its file's name: `.` + the longest
/// sibling's addition (the model `<stem>.safetensors` adds at most 12 bytes
/// to a name without extension; the record adds `.json`) + `.` + tempfile's
/// six random characters + `.tmp`.
const TMP_EXTRA: usize = 1 + 12 + 1 + 6 + 4;

/// A run's files, the CSV created (holding its header) so that no other run takes it.
pub struct RunFiles {
    pub csv: PathBuf,
    /// `<csv>.json`: the run record beside the metrics.
    pub json: PathBuf,
}

impl RunFiles {
    pub fn of(csv: &Path) -> Self {
        RunFiles {
            csv: csv.to_path_buf(),
            json: layout::record(csv),
        }
    }

    /// Where the trained network goes.
    pub fn model(&self) -> PathBuf {
        layout::model(&self.csv)
    }
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
    if layout::record(path).is_dir() {
        bail!(
            "{what} {text}: its record {} is a folder",
            layout::record(path).display()
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
            Ok(m) if m.is_dir() => return writable(dir, what),
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

/// Fails unless this process may create files in the folder `dir`.
fn writable(dir: &Path, what: &str) -> Result<()> {
    use rustix::fs::Access;
    rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
        anyhow::anyhow!(
            "{what}: cannot write in {} ({})",
            dir.display(),
            std::io::Error::from(e)
        )
    })
}

/// Refuses, before anything exists, a folder that cannot be written: a
/// file, one under a file, a link that leads nowhere (or in a loop), or a
/// folder this process may not write in.
pub fn check_dir(dir: &Path, what: &str) -> Result<()> {
    match (std::fs::symlink_metadata(dir), std::fs::metadata(dir)) {
        (Ok(_), Err(e)) => bail!(
            "{what} {} is a link that leads to no folder ({e})",
            dir.display()
        ),
        (_, Ok(m)) if !m.is_dir() => bail!("{what} {} is a file; give a folder", dir.display()),
        (_, Ok(_)) => writable(dir, what),
        _ => check_parent(dir, what),
    }
}

/// Fails, touching nothing, if any of the runs whose CSVs are `csvs`
/// cannot be written, or one of its files (CSV, record, model, checkpoint)
/// exists and may not be replaced; `what` names the flag they come from.
pub fn check_free(csvs: &[PathBuf], what: &str, overwrite: bool) -> Result<()> {
    for csv in csvs {
        check_path(csv, what)?;
        let [_, model, checkpoint, _] = layout::run_files(csv);
        for (p, kind) in [(model, "model"), (checkpoint, "checkpoint")] {
            if p == *csv {
                bail!(
                    "{what} {}: the {kind} is written to <stem>.{}, which would replace the CSV; choose a .csv name",
                    csv.display(),
                    p.extension().unwrap_or_default().to_string_lossy()
                );
            }
            if p.is_dir() {
                bail!(
                    "{what} {}: its {kind} {} is a folder",
                    csv.display(),
                    p.display()
                );
            }
        }
        if let Some(p) = layout::run_files(csv)
            .into_iter()
            .find(|p| !overwrite && p.exists())
        {
            bail!(
                "{} already exists; pass --overwrite to replace it, or choose another output",
                p.display()
            );
        }
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
    check_folder_free(path)
}

/// Fails if `out` is one of `inputs` (each with what it is), under any
/// name: `--overwrite` replaces earlier outputs, never what is read.
pub fn check_not_an_input(out: &Path, what: &str, inputs: &[(&Path, &str)]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(());
    };
    for (input, kind) in inputs {
        if std::fs::metadata(input).is_ok_and(|i| (i.dev(), i.ino()) == (o.dev(), o.ino())) {
            bail!(
                "{what} {} is the {kind} {}: an input is never overwritten; choose another output",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Creates `csv` holding `header` (with `overwrite`, replaces it).
pub fn claim_path(csv: &Path, header: &[u8], overwrite: bool) -> Result<RunFiles> {
    check_free(&[csv.to_path_buf()], "output", overwrite)?;
    check_folder_free(csv)?;
    make_parent(csv)?;
    if !create_with(csv, header, overwrite)? {
        bail!(
            "{} already exists; pass --overwrite to replace it",
            csv.display()
        );
    }
    Ok(RunFiles::of(csv))
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
        let csv = layout::default_run(name, seed, k);
        if layout::run_files(&csv).iter().any(|p| p.exists()) {
            continue;
        }
        check_path(&csv, "output")?;
        make_parent(&csv)?;
        if create_with(&csv, header, false)? {
            return Ok(RunFiles::of(&csv));
        }
    }
    unreachable!("the loop returns or fails")
}

/// Creates a folder that did not exist: the first free `base`, `base-1`, …
/// Two commands started together never get the same one.
pub fn claim_new_dir(base: &Path) -> Result<PathBuf> {
    for k in 0.. {
        let mut dir = base.as_os_str().to_owned();
        if k > 0 {
            dir.push(format!("-{k}"));
        }
        let dir = PathBuf::from(dir);
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

/// A file being written beside its destination. On Linux it has no name at
/// all until complete (`O_TMPFILE`), so a killed writer leaves nothing
/// behind; where the file system cannot (or `/proc` is absent) it is
/// tempfile's hidden named file, removed when dropped.
struct Temporary {
    file: std::fs::File,
    dir: PathBuf,
    prefix: std::ffi::OsString,
    named: Option<tempfile::TempPath>,
}

/// A new temporary for `path`, with the permissions a plain create gives
/// (tempfile's own are owner-only).
fn temporary(path: &Path) -> Result<Temporary> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = (path.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    let anonymous = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    let (file, named) = match anonymous {
        Ok(file) if Path::new("/proc/self/fd").is_dir() => (file, None),
        _ => {
            let (file, named) = Temporary::named(dir, &prefix)
                .map_err(plain)
                .with_context(|| format!("cannot write {}", path.display()))?;
            (file, Some(named))
        }
    };
    Ok(Temporary {
        file,
        dir: dir.to_path_buf(),
        prefix,
        named,
    })
}

impl Temporary {
    /// tempfile's hidden named file beside `path`.
    fn named(
        dir: &Path,
        prefix: &std::ffi::OsStr,
    ) -> std::io::Result<(std::fs::File, tempfile::TempPath)> {
        Ok(tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)?
            .into_parts())
    }

    /// Gives the whole file its name: with `overwrite` replacing `path` in
    /// one rename, otherwise failing with `AlreadyExists` if it exists.
    fn persist(mut self, path: &Path, overwrite: bool) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        use std::os::fd::AsRawFd;
        if let Some(named) = self.named {
            let done = if overwrite {
                named.persist(path)
            } else {
                named.persist_noclobber(path)
            };
            return done.map_err(|e| e.error);
        }
        // An O_TMPFILE file is named through linkat of its /proc link
        // (std's hard_link does not follow it; AT_EMPTY_PATH needs a
        // capability before Linux 6.10).
        let me = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let link = |to: &Path| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                me.as_str(),
                rustix::fs::CWD,
                to,
                rustix::fs::AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)
        };
        let linked = if overwrite {
            // No call links over an existing name: the file is named for
            // the two system calls between link and rename.
            tempfile::Builder::new()
                .prefix(&self.prefix)
                .suffix(".tmp")
                .make_in(&self.dir, |p| link(p))
                .and_then(|t| t.persist(path).map(drop).map_err(|e| e.error))
        } else {
            link(path)
        };
        match linked {
            // A file system or security module that refuses the link: the
            // bytes go to a named temporary instead, never lost.
            Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                let (mut file, named) = Self::named(&self.dir, &self.prefix)?;
                self.file.seek(SeekFrom::Start(0))?;
                std::io::copy(&mut self.file, &mut file)?;
                file.sync_all()?;
                self.named = Some(named);
                self.persist(path, overwrite)
            }
            r => r,
        }
    }
}

impl Write for Temporary {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `bytes` in a temporary beside `path`.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<Temporary> {
    let mut tmp = temporary(path)?;
    tmp.write_all(bytes)
        .map_err(plain)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(tmp)
}

/// An error without the temporary's name, which tempfile appends to its
/// errors' text (` at path "…"`): the user is told of the file they asked for.
fn plain(e: std::io::Error) -> std::io::Error {
    match e.to_string().split_once(" at path ") {
        Some((what, _)) => std::io::Error::new(e.kind(), what.to_string()),
        None => e,
    }
}

/// Replaces `path` with `bytes` in one step: readers see the old file or the
/// whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_temporary(path, bytes)?
        .persist(path, true)
        .map_err(plain)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A file written as a stream that appears under its name only when
/// complete ([`Pending::commit`]): until then it is a temporary (unnamed, or hidden),
/// removed if the writer fails or is dropped, so a failed command leaves
/// no output behind.
pub struct Pending {
    path: PathBuf,
    file: std::io::BufWriter<Temporary>,
}

impl Pending {
    /// Starts writing `path` (its folder is created if missing).
    pub fn create(path: &Path) -> Result<Self> {
        make_parent(path)?;
        Ok(Pending {
            path: path.to_path_buf(),
            file: std::io::BufWriter::with_capacity(1 << 20, temporary(path)?),
        })
    }

    /// Puts the whole file under its name; without `overwrite`, never
    /// replacing a file that appeared meanwhile.
    pub fn commit(self, overwrite: bool) -> Result<()> {
        let path = self.path;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| plain(e.into_error()))
            .and_then(|f| f.file.sync_all().map(|()| f))
            .with_context(|| format!("cannot write {}", path.display()))?;
        if !persisted(tmp, &path, overwrite)? {
            bail!(
                "{} already exists; pass --overwrite to replace it",
                path.display()
            );
        }
        Ok(())
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).map_err(plain)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().map_err(plain)
    }
}

/// Files and folders this process holds (see [`hold`]), kept open until it
/// ends.
static HELD: std::sync::Mutex<Vec<((u64, u64), std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// At most this many held at once (see [`hold`]), and at most a quarter of
/// the descriptors the process may open (`ulimit -n`), so that the files a
/// run writes always find one.
fn max_held() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit.map_or(64, |n| (n / 4).min(64) as usize)
}

/// Makes `path` (a run's CSV, or a sweep's folder) this process's to write
/// until it ends: two processes appending to one CSV, or one cutting it back
/// (`resume`) while another appends, would interleave their rows. The hold
/// is an exclusive `flock`, which the kernel drops when the process ends,
/// however it ends, so a killed run never leaves one behind. Where the file
/// system has no such locks the run goes on unheld, as it did before.
pub fn hold(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_dir() {
        check_folder_free(path)?;
    }
    // A grid of thousands of settings holds a folder each: past max_held()
    // the rest go unheld, leaving descriptors for the files the run writes.
    // Every process holds a grid's folders in the same order, so a second
    // one is still refused at the first.
    if HELD.lock().map_or(0, |h| h.len()) >= max_held() {
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
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        bail!(
            "{} is being written by another binclass process; wait for it to end, or choose another output",
            path.display()
        );
    }
    held.push((id, file));
    Ok(())
}

/// Fails if the folder `path` goes into is held by another process (a
/// live sweep's or reproduction's, see [`hold`]): a file there is one of
/// its runs, or would be counted with them. A shared lock taken and
/// dropped at once: it conflicts with a hold, never with another check.
fn check_folder_free(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    check_not_held(dir, path)
}

/// Fails if the folder `dir`, where `path` goes, is held by another
/// process (see [`check_folder_free`]).
pub fn check_not_held(dir: &Path, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // A folder that cannot be opened (not made yet) is nobody's.
    let Ok(folder) = std::fs::File::open(dir) else {
        return Ok(());
    };
    let ours = folder.metadata().is_ok_and(|m| {
        let id = (m.dev(), m.ino());
        let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.iter().any(|(h, _)| *h == id)
    });
    if !ours && let Err(std::fs::TryLockError::WouldBlock) = folder.try_lock_shared() {
        bail!(
            "{}: its folder {} is being written by another binclass process (a sweep or reproduction); wait for it to end, or choose another output",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Appends `bytes` in one write, opening the file for it (so a sweep of
/// thousands of runs holds no descriptors); a write that fails part-way (a
/// full disk) is cut back, so the file still ends with a whole `unit`.
pub fn append(path: &Path, bytes: &[u8], unit: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // Never through a link: a file of the run replaced by one mid-run
    // would have the run's rows appended to whatever it points at.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let complete = f.metadata().map(|m| m.len());
    if let Err(e) = f.write_all(bytes) {
        let kept = complete.and_then(|len| f.set_len(len));
        return Err(e).with_context(|| match kept {
            Ok(()) => format!(
                "cannot write {} (it keeps every complete {unit})",
                path.display()
            ),
            Err(_) => format!("cannot write {}", path.display()),
        });
    }
    Ok(())
}

/// Cuts `path` back to its first `len` bytes: a resumed run's CSV, to
/// where its checkpoint left it.
pub fn truncate(path: &Path, len: u64) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .with_context(|| format!("cannot trim {}", path.display()))
}

/// Creates `path` holding `bytes` in one step; `false` when it exists and
/// may not be replaced.
pub fn create_with(path: &Path, bytes: &[u8], overwrite: bool) -> Result<bool> {
    if overwrite {
        write_atomic(path, bytes)?;
        return Ok(true);
    }
    persisted(write_temporary(path, bytes)?, path, false)
}

/// Names the whole `tmp` `path` (see [`Temporary::persist`]); `false` when
/// `path` exists and may not be replaced.
fn persisted(tmp: Temporary, path: &Path, overwrite: bool) -> Result<bool> {
    match tmp.persist(path, overwrite).map_err(plain) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// The random part of a temporary's name: tempfile's six letters or digits.
const TMP_RANDOM: usize = 6;

/// The file whose temporary `entry` is, if it is named as one is for the
/// two system calls between link and rename ([`Temporary::persist`]):
/// `.<name>.<six letters or digits>.tmp`.
fn temporary_target(entry: &str) -> Option<&str> {
    let (name, random) = entry
        .strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')?;
    let random_part =
        random.len() == TMP_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric());
    (random_part && !name.is_empty()).then_some(name)
}

/// The temporaries in `dir` of files whose names `of` accepts: those a
/// writer killed between link and rename left. They are a command's own
/// when the files are: files it may replace (a run's, or its folder's
/// plan's), whose replacement the user asked for, and a temporary of one
/// is only ever one of its replacements. Nothing else named like a
/// temporary is ever touched.
pub fn temporaries_in(dir: &Path, of: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let listed = match dir.as_os_str().is_empty() {
        true => layout::paths_in(Path::new(".")),
        false => layout::paths_in(dir),
    };
    let mut found: Vec<PathBuf> = (listed.unwrap_or_default().into_iter())
        .filter_map(|p| {
            let entry = p.file_name()?.to_str()?;
            temporary_target(entry).filter(|n| of(n))?;
            // A temporary is a plain file, never a link or a folder.
            p.symlink_metadata().ok().filter(|m| m.is_file())?;
            Some(dir.join(entry))
        })
        .collect();
    found.sort();
    found
}

/// The temporaries of `files` (see [`temporaries_in`]).
pub fn temporaries_of(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut by_folder: std::collections::BTreeMap<&Path, Vec<&std::ffi::OsStr>> =
        Default::default();
    for f in files {
        if let (Some(dir), Some(name)) = (f.parent(), f.file_name()) {
            by_folder.entry(dir).or_default().push(name);
        }
    }
    (by_folder.into_iter())
        .flat_map(|(dir, names)| temporaries_in(dir, |t| names.iter().any(|n| *n == t)))
        .collect()
}

/// Removes the temporaries of `files` (see [`temporaries_of`]).
pub fn remove_temporaries_of(files: &[PathBuf]) -> Result<()> {
    temporaries_of(files)
        .iter()
        .try_for_each(|t| remove_file(t))
}

/// Removes `path`, which may already be gone.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `text` to stdout (a failure as [`stdout_failed`] has it).
pub fn stdout(text: &str) -> Result<()> {
    (std::io::stdout().lock().write_all(text.as_bytes())).or_else(|e| stdout_failed(&e))
}

/// What a failed write to stdout means: a reader that closed the pipe early
/// (`| head`) is not an error; anything else is, named as stdout's.
pub fn stdout_failed(e: &std::io::Error) -> Result<()> {
    if e.kind() != ErrorKind::BrokenPipe {
        bail!("cannot write to stdout: {e}");
    }
    Ok(())
}

/// Progress and messages on stderr. A closed or full stderr must not stop a
/// run whose files are fine, so what cannot be written is dropped.
pub fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.write_all(b"\n");
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
    fn a_file_being_written_has_no_name_until_it_is_whole() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let unnamed = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir.path());
        if unnamed.is_err() {
            eprintln!("skipped: this file system has no O_TMPFILE");
            return;
        }
        let p = dir.path().join("p.csv");
        let mut pending = Pending::create(&p).unwrap();
        pending.write_all(b"half").unwrap();
        pending.flush().unwrap();
        let names = || dir.path().read_dir().unwrap().count();
        assert_eq!(names(), 0, "a writer killed now would leave nothing");
        pending.commit(false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"half");
        write_atomic(&p, b"whole").unwrap();
        assert_eq!(
            (std::fs::read(&p).unwrap(), names()),
            (b"whole".to_vec(), 1)
        );
    }

    #[test]
    fn temporaries_named_like_ours_are_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 2^22 + 1 is above Linux's pid_max ceiling: never a live process.
        let theirs = dir.path().join(".thesis.txt.4194305.1.tmp");
        std::fs::write(&theirs, "a user's file").unwrap();
        write_atomic(&dir.path().join("a.csv.json"), b"{}").unwrap();
        Pending::create(&dir.path().join("p.csv"))
            .unwrap()
            .commit(false)
            .unwrap();
        assert!(theirs.exists());
        let left: Vec<_> = dir.path().read_dir().unwrap().collect();
        assert_eq!(left.len(), 3, "no temporary of ours stays behind");
    }

    #[test]
    fn a_temporary_is_a_files_only_by_the_exact_name_its_replace_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            ".a.csv.Ab12Cd.tmp",
            ".a.csv.json.000000.tmp",
            ".a.csv.Ab12C.tmp",
            ".a.csv.Ab12C-.tmp",
            ".a.csv.Ab12Cd.tmp.tmp",
            "a.csv.Ab12Cd.tmp",
            ".b.csv.Ab12Cd.tmp",
            "..Ab12Cd.tmp",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        std::fs::create_dir(dir.path().join(".a.csv.folder.tmp")).unwrap();
        std::os::unix::fs::symlink("a.csv", dir.path().join(".a.csv.linked.tmp")).unwrap();
        let files = ["a.csv", "a.csv.json"].map(|f| dir.path().join(f));
        assert_eq!(
            temporaries_of(&files),
            [".a.csv.Ab12Cd.tmp", ".a.csv.json.000000.tmp"].map(|n| dir.path().join(n))
        );
        // Each name the way Temporary::persist makes it.
        let tmp = temporary(&files[0]).unwrap();
        let made = tempfile::Builder::new()
            .prefix(&tmp.prefix)
            .suffix(".tmp")
            .tempfile_in(dir.path())
            .unwrap();
        let made = made.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(temporary_target(made), Some("a.csv"));
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
