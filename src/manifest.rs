//! `manifest.json`: the first file a sweep or reproduction writes in its
//! folder, saying which command, plan (settings and seeds) and shard the
//! folder holds, and, once the command ends, that it finished. `--resume`
//! continues only the command line that wrote it; `--overwrite` removes
//! exactly what that command could have written (its plan names every file)
//! and nothing else; `merge` joins only finished shards of one plan.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::shard::Shard;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// `sweep` or `reproduce`.
    pub command: String,
    /// The slice this folder trains, if the command was sharded.
    pub shard: Option<Shard>,
    /// The whole command's plan: `seeds` and, per setting, its `folder`,
    /// `experiment` and (a reproduction's) `seeds`. Equal across a
    /// command's shards.
    pub plan: serde_json::Value,
    pub finished: bool,
    /// Seconds each part took to train (a reproduction's experiments and
    /// curves), summed by `merge` for the report.
    #[serde(default)]
    pub timings: Vec<(String, f64)>,
}

const FORMAT: &str = "binclass-folder";

/// How a command takes its folder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Claim {
    /// A folder holding no other command's manifest.
    New,
    /// Replacing what the command in its manifest wrote.
    Overwrite,
    /// Continuing the command in its manifest, which must be this one.
    Resume,
}

impl Claim {
    /// How a command given `--resume` and `--overwrite` takes its folder.
    pub fn of(resume: bool, overwrite: bool) -> Claim {
        match (resume, overwrite) {
            (true, _) => Claim::Resume,
            (_, true) => Claim::Overwrite,
            _ => Claim::New,
        }
    }
}

impl Manifest {
    pub fn new(command: &str, shard: Option<Shard>, plan: serde_json::Value) -> Self {
        Manifest {
            format: FORMAT.into(),
            command: command.into(),
            shard,
            plan,
            finished: false,
            timings: vec![],
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::outputs::write_atomic(&layout::manifest(dir), text.as_bytes())
    }

    /// The manifest in `dir`, or `None` where there is none.
    pub fn find(dir: &Path) -> Result<Option<Self>> {
        let path = layout::manifest(dir);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.with_context(|| format!("cannot read {}", path.display()))?,
        };
        let m: Manifest = serde_json::from_str(&text)
            .ok()
            .filter(|m: &Manifest| m.format == FORMAT)
            .with_context(|| format!("{} is not a binclass manifest", path.display()))?;
        if let Some(Shard { index, count }) = m.shard.filter(|s| s.index >= s.count) {
            let path = path.display();
            bail!("{path} is not a binclass manifest: shard {index}/{count} (K/N needs K < N)");
        }
        Ok(Some(m))
    }

    /// The manifest a shard's folder holds, finished.
    pub fn read_shard(dir: &Path) -> Result<(Self, Shard)> {
        let m = Self::find(dir)?.with_context(|| {
            format!(
                "{} is not a shard's folder: it has no {}",
                dir.display(),
                layout::MANIFEST
            )
        })?;
        let Some(shard) = m.shard else {
            bail!(
                "{} holds an unsharded {}, not a shard",
                dir.display(),
                m.command
            );
        };
        ensure!(
            m.finished,
            "{} holds shard {}/{} unfinished; finish it with its command and --resume",
            dir.display(),
            shard.index,
            shard.count
        );
        Ok((m, shard))
    }

    /// What this command line is, as the user would give it.
    fn described(&self) -> String {
        match self.shard {
            Some(s) => format!("{} --shard {}/{}", self.command, s.index, s.count),
            None => format!("{} without --shard", self.command),
        }
    }

    /// Whether `--resume` continues what it holds: a `--vary` grid keeps no
    /// checkpoints.
    fn resumable(&self) -> bool {
        let knobs = self.plan.get("knobs").and_then(|k| k.as_array());
        self.command != "sweep" || knobs.is_none_or(|k| k.is_empty())
    }

    /// Checks, writing nothing, that this command may take `dir` as `claim`
    /// says: an error names the command line the folder holds.
    pub fn check(&self, dir: &Path, claim: Claim) -> Result<()> {
        ensure!(
            claim != Claim::Resume || dir.exists(),
            "{}: no such folder, so no {} to resume",
            dir.display(),
            self.command
        );
        let found = Self::find(dir)?;
        match (claim, found) {
            (Claim::Resume, None) => bail!(
                "{} holds no {} to resume (no {}); run it without --resume",
                dir.display(),
                self.command,
                layout::MANIFEST
            ),
            (Claim::Resume, Some(m)) if (&m.command, m.shard) != (&self.command, self.shard) => {
                bail!(
                    "{} holds a {} ({}); resume it with that command line",
                    dir.display(),
                    m.described(),
                    layout::MANIFEST
                )
            }
            (Claim::Resume, Some(m)) if let Some(key) = plan_difference(&m.plan, &self.plan) => {
                bail!(
                    "{} holds a {} of other settings: its {key} ({}); resume it with the command line that started it",
                    dir.display(),
                    m.command,
                    layout::MANIFEST
                )
            }
            (Claim::Overwrite, Some(m)) if m.command != self.command => bail!(
                "{} holds a {}, not a {}: --overwrite replaces only what this command wrote; choose another folder, or remove that one yourself",
                dir.display(),
                m.described(),
                self.command
            ),
            (Claim::New, Some(m)) if m.resumable() => bail!(
                "{} already holds a {}; pass --resume to continue it, or --overwrite to replace it",
                dir.display(),
                m.described()
            ),
            (Claim::New, Some(m)) => bail!(
                "{} already holds a {} of a grid (--vary), which cannot be resumed; pass --overwrite to replace it",
                dir.display(),
                m.described()
            ),
            _ => Ok(()),
        }
    }

    /// Takes `dir` for this command (checked by [`Manifest::check`]): with
    /// `Overwrite`, first removes every file the manifest's command could
    /// have written; then writes this manifest, unfinished.
    pub fn claim(&self, dir: &Path, claim: Claim) -> Result<()> {
        if claim == Claim::Overwrite
            && let Some(old) = Self::find(dir)?
        {
            for path in old.written(dir) {
                remove(&path)?;
            }
        }
        if claim != Claim::Resume {
            self.write(dir)?;
        }
        Ok(())
    }

    /// Marks the folder finished, with the parts' timings.
    pub fn finish(mut self, dir: &Path, timings: Vec<(String, f64)>) -> Result<()> {
        self.finished = true;
        self.timings = timings;
        self.write(dir)
    }

    /// Every file (and folder, after its contents) the plan's command may
    /// write in `dir`, whether or not it exists.
    pub fn written(&self, dir: &Path) -> Vec<PathBuf> {
        // `[a, b]` (a sweep's), or a count from 0 (a reproduction's, whose
        // settings may each carry their own).
        let seeds = |v: &serde_json::Value| match v {
            serde_json::Value::Array(ab) => {
                ab[0].as_u64().unwrap_or(0)..=ab[1].as_u64().unwrap_or(0)
            }
            n => 0..=n.as_u64().unwrap_or(0).saturating_sub(1),
        };
        let mut files = vec![];
        let mut folders = vec![dir.join("runs"), layout::figures(dir)];
        for s in self.plan["settings"].as_array().into_iter().flatten() {
            let (Some(folder), Some(name)) =
                (s["folder"].as_str(), s["experiment"]["name"].as_str())
            else {
                continue;
            };
            let at = dir.join(folder);
            let seeds = seeds(s.get("seeds").unwrap_or(&self.plan["seeds"]));
            files.extend(layout::sweep_files(&at, name, seeds));
            files.extend(layout::batch_checkpoints(&at).unwrap_or_default());
            // A reproduction's figures are named for the label under runs/.
            if let Some(label) = Path::new(folder)
                .strip_prefix("runs")
                .ok()
                .and_then(|p| p.iter().next())
            {
                let label = label.to_string_lossy();
                files.extend([
                    layout::figure(dir, &label),
                    layout::boundary_figure(dir, &label),
                    layout::finals_figure(dir, &label),
                ]);
            }
            let inner: Vec<PathBuf> = Path::new(folder).ancestors().map(|a| dir.join(a)).collect();
            files.extend(inner.iter().map(|f| layout::summary(f)));
            folders.extend(inner);
        }
        files.extend([layout::report(dir), layout::manifest(dir)]);
        files.sort();
        files.dedup();
        // Deepest folders first, so each is empty (if only ours were there) when reached.
        folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
        folders.dedup();
        files.extend(folders.into_iter().filter(|f| f != dir));
        files
    }
}

/// Removes a file, or a folder if it is empty; what is not there, or a
/// folder still holding what is not ours, is left.
fn remove(path: &Path) -> Result<()> {
    let done = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => match std::fs::remove_dir(path) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            r => r,
        },
        Ok(_) => std::fs::remove_file(path),
    };
    done.with_context(|| format!("cannot remove {}", path.display()))
}

/// `plan` with each setting's seeds spelled out: a reproduction's settings
/// carry their own count since its defaults differ by experiment, and a plan
/// written before then (one `seeds` for all) is the same plan.
fn with_seeds(plan: &serde_json::Value) -> serde_json::Value {
    let mut plan = plan.clone();
    if let Some(n) = plan["seeds"].as_u64()
        && let Some(settings) = plan["settings"].as_array_mut()
    {
        for s in settings.iter_mut().filter(|s| s.get("seeds").is_none()) {
            s["seeds"] = n.into();
        }
    }
    plan
}

/// Where plan `a` first differs from `b`, with both values, if it does.
pub fn plan_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    let (a, b) = (with_seeds(a), with_seeds(b));
    (a != b).then(|| differing_key(&a, &b))
}

/// Where two plans first differ (`settings[0].experiment.lr`), with both values.
fn differing_key(a: &serde_json::Value, b: &serde_json::Value) -> String {
    use serde_json::Value;
    let mut path = String::new();
    let (mut a, mut b) = (a, b);
    loop {
        let next = match (a, b) {
            (Value::Object(x), Value::Object(y)) => x
                .keys()
                .chain(y.keys())
                .find(|k| x.get(*k) != y.get(*k))
                .map(|k| (format!(".{k}"), &a[k.as_str()], &b[k.as_str()])),
            // Into a list of settings, not of numbers: `seeds` is shown whole.
            (Value::Array(x), Value::Array(y))
                if x.len() == y.len() && x.iter().all(Value::is_object) =>
            {
                (0..x.len())
                    .find(|&i| x[i] != y[i])
                    .map(|i| (format!("[{i}]"), &x[i], &y[i]))
            }
            _ => None,
        };
        let Some((step, x, y)) = next else { break };
        path.push_str(&step);
        (a, b) = (x, y);
    }
    let short = |v: &Value| {
        Some(v.to_string())
            .filter(|t| t.len() <= 40)
            .unwrap_or("…".into())
    };
    format!(
        "`{}` is {}, this command's {}",
        path.trim_start_matches('.'),
        short(a),
        short(b)
    )
}
