//! `--tensorboard DIR`: Keras 2's TensorBoard callback, so that binclass's
//! runs sit beside real Keras runs in one dashboard with the same layout
//! and tags: `DIR/<run>/train` and `DIR/<run>/validation`, `epoch_loss`
//! and `epoch_binary_accuracy` at step = epoch, and in `validation` also
//! Keras's `evaluation_*_vs_iterations` at step = optimizer steps so far
//! (Keras writes no `epoch_learning_rate` for a constant rate). A `--vary`
//! grid's runs also carry the HParams plugin's data: each run a session
//! with its knobs' values, grouped by setting, and the best validation
//! accuracy so far as `epoch_best_binary_accuracy` beside the last one.
//!
//! Events are written as the CSV's rows are: each epoch's in one write per
//! file, opened for it, so a sweep holds no descriptors and a killed run
//! leaves whole records.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use prost_types::{ListValue, Value, value::Kind};

use super::{Callback, Control, Optional, RunInfo};
use crate::fit::{EpochLogs, Outcome, Plan};
use crate::keras_csv::{self, TRAINING, VAL_ACC};
use crate::tfevents::{self, Experiment, HParamInfo, HParams, MetricInfo, MetricName};
use crate::{layout, outputs};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct TensorBoard {
    /// Also write each run for TensorBoard (`tensorboard --logdir DIR`), as
    /// Keras's TensorBoard callback does: DIR/<run>/train and
    /// DIR/<run>/validation, <run> being <preset>/seed<N> (in a --vary grid
    /// <knob>=<v>/…/seed<N>, with HParams data). A run's folder that holds
    /// events is replaced only with --overwrite, continued by a resume.
    #[arg(long = "tensorboard", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A grid's knobs and their values: the HParams plugin's hyperparameters.
    #[arg(skip)]
    pub hparams: Vec<(String, Vec<String>)>,
}

const TRAIN: &str = "train";
const VALIDATION: &str = "validation";
const BEST: &str = "epoch_best_binary_accuracy";

impl Optional for TensorBoard {
    /// A run's folders must hold only binclass's event files (TensorBoard
    /// would show another writer's beside them), and none on a fresh run.
    fn check(&self, runs: &[String], fresh: bool) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        outputs::check_dir(dir, "--tensorboard")?;
        for run in runs {
            let folder = dir.join(run);
            outputs::check_dir(&folder, "--tensorboard")?;
            if folder.is_dir() {
                outputs::check_not_held(&folder, &folder)?;
            }
            for sub in ["", TRAIN, VALIDATION] {
                for f in event_files(&folder.join(sub), false)? {
                    if !layout::is_our_event_file(
                        &f.file_name().unwrap_or_default().to_string_lossy(),
                    ) {
                        bail!(
                            "{} was not written by binclass; move it away, or choose another --tensorboard folder",
                            f.display()
                        );
                    }
                    if fresh {
                        bail!(
                            "{} already exists; pass --overwrite to replace that run's events, or choose another --tensorboard folder",
                            f.display()
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn observer(&self, run: &RunInfo) -> Result<Option<Box<dyn Callback>>> {
        let Some(dir) = self.run_dir(&run.name) else {
            return Ok(None);
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        outputs::hold(&dir)?;
        let shown = run.experiment.settings();
        let hparams = self.hparams.iter().map(|(flag, values)| {
            let v = shown.iter().find(|(f, _)| f == flag).map(|(_, v)| v);
            (
                flag.clone(),
                value(v.map_or("", String::as_str), numeric(values)),
            )
        });
        let group = run.name.rsplit_once('/').map_or("", |(g, _)| g);
        let session = (!self.hparams.is_empty()).then(|| tfevents::SessionStartInfo {
            hparams: hparams.collect(),
            group_name: group.into(),
            start_time_secs: 0.0,
        });
        Ok(Some(Box::new(Writer {
            dir,
            csv: run.csv.to_path_buf(),
            files: vec![],
            steps: 0,
            session,
            best: f64::NEG_INFINITY,
        })))
    }
}

impl TensorBoard {
    /// The folder of the run `name`'s events, if events are written.
    pub fn run_dir(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// A grid's HParams experiment (its knobs, final and best validation
    /// accuracy as metrics), in DIR itself where TensorBoard looks for it.
    pub fn write_experiment(&self) -> Result<()> {
        let (Some(dir), false) = (&self.dir, self.hparams.is_empty()) else {
            return Ok(());
        };
        let hparam_infos = self
            .hparams
            .iter()
            .map(|(name, values)| HParamInfo {
                name: name.clone(),
                r#type: if numeric(values) { 3 } else { 1 },
                domain_discrete: Some(ListValue {
                    values: values.iter().map(|v| value(v, numeric(values))).collect(),
                }),
                differs: values.len() > 1,
            })
            .collect();
        let metric = |tag: &str, display: &str| MetricInfo {
            name: Some(MetricName {
                group: VALIDATION.into(),
                tag: tag.into(),
            }),
            display_name: display.into(),
            dataset_type: 2,
        };
        let metric_infos = vec![
            metric("epoch_binary_accuracy", "final val_binary_accuracy"),
            metric(BEST, "best val_binary_accuracy"),
        ];
        let mut body = vec![];
        let experiment = Experiment {
            hparam_infos,
            metric_infos,
        };
        tfevents::hparams(&mut body, now(), HParams::Experiment(experiment));
        new_file(dir, false, &body).map(drop)
    }
}

fn numeric(values: &[String]) -> bool {
    values.iter().all(|v| v.parse::<f64>().is_ok())
}

fn value(v: &str, numeric: bool) -> Value {
    let kind = match v.parse() {
        Ok(n) if numeric => Kind::NumberValue(n),
        _ => Kind::StringValue(v.into()),
    };
    Value { kind: Some(kind) }
}

fn now() -> f64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The event files in `dir` whose names end with `suffix`, sorted as
/// TensorBoard reads them; none if `dir` does not exist.
fn event_files(dir: &Path, only_ours: bool) -> Result<Vec<PathBuf>> {
    let mut files = match crate::layout::paths_in(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        r => r.with_context(|| format!("cannot read {}", dir.display()))?,
    };
    files.retain(|path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let events = match only_ours {
            true => layout::is_our_event_file(&name),
            false => layout::is_event_file(&name),
        };
        events && path.is_file()
    });
    files.sort();
    Ok(files)
}

/// A new event file in `dir`, its header then `body`, named as TensorFlow
/// names them but sorting after the earlier ones binclass wrote there,
/// which it then removes: what they held is the new file's to replace.
fn new_file(dir: &Path, start: bool, body: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let earlier = event_files(dir, true)?;
    let secs = |p: &PathBuf| layout::event_file_secs(p.file_name()?.to_str()?);
    let now = now();
    let secs = earlier
        .last()
        .and_then(secs)
        .map_or(now as u64, |s| (now as u64).max(s + 1));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname");
    let host = host.as_deref().map_or("localhost", str::trim);
    let pid = std::process::id();
    let path = layout::event_file(dir, secs, host, pid);
    let mut bytes = tfevents::header(now, start);
    bytes.extend_from_slice(body);
    if !outputs::create_with(&path, &bytes, false)? {
        bail!("{} already exists", path.display());
    }
    // Another shard of a grid may remove the same earlier experiment.
    earlier
        .iter()
        .try_for_each(|old| outputs::remove_file(old))?;
    Ok(path)
}

/// One run's event files.
struct Writer {
    /// `DIR/<run>`.
    dir: PathBuf,
    csv: PathBuf,
    /// The train and validation files, then (in a grid) the session's.
    files: Vec<PathBuf>,
    steps: i64,
    session: Option<tfevents::SessionStartInfo>,
    best: f64,
}

impl Writer {
    /// One epoch's events: Keras's, in the order it writes them.
    fn encode(&mut self, [train, val]: &mut [Vec<u8>; 2], logs: &EpochLogs) {
        let (t, e, steps) = (now(), logs.epoch, (logs.epoch + 1) * self.steps);
        let logged: Vec<f64> = logs.logs().map(|(_, v)| v).collect();
        let (training, validation) = logged.split_at(TRAINING.len());
        for (name, v) in TRAINING.iter().zip(training) {
            tfevents::scalar(train, t, &format!("epoch_{name}"), e, *v as f32);
        }
        self.best = self.best.max(logs.metrics[VAL_ACC]);
        let best = self
            .session
            .as_ref()
            .map(|_| (BEST.to_string(), e, self.best));
        let named = || TRAINING.iter().zip(validation);
        let vs_iterations =
            named().map(|(n, v)| (format!("evaluation_{n}_vs_iterations"), steps, *v));
        let per_epoch = named().map(|(n, v)| (format!("epoch_{n}"), e, *v));
        for (tag, step, v) in vs_iterations.chain(per_epoch).chain(best) {
            tfevents::scalar(val, t, &tag, step, v as f32);
        }
    }
}

impl Callback for Writer {
    /// New files that hold the whole run and replace the run's earlier
    /// ones (a run replaced, or a killed one, whose file may hold an epoch
    /// past its checkpoint): a resumed run's epochs before `initial_epoch`
    /// are written again from its CSV (cut back to the checkpoint), so each
    /// epoch shows once, with the CSV's values. Each starts with a
    /// `SessionLog.START` at step 0, so that TensorBoard drops an earlier
    /// file a kill left beside it too.
    fn on_train_begin(&mut self, plan: &Plan) -> Result<()> {
        self.steps = plan.steps();
        let mut replay = [vec![], vec![]];
        if plan.initial_epoch > 0 {
            let curve = keras_csv::read_curve(&self.csv)?;
            for (e, r) in curve.iter().take(plan.initial_epoch as usize).enumerate() {
                self.encode(&mut replay, &EpochLogs::from_row(e as i64, *r));
            }
        }
        self.files = [TRAIN, VALIDATION]
            .into_iter()
            .zip(replay)
            .map(|(sub, body)| new_file(&self.dir.join(sub), true, &body))
            .collect::<Result<_>>()?;
        if let Some(mut start) = self.session.clone() {
            start.start_time_secs = now();
            let mut body = vec![];
            tfevents::hparams(&mut body, now(), HParams::SessionStart(start));
            self.files.push(new_file(&self.dir, false, &body)?);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        let mut bytes = [vec![], vec![]];
        self.encode(&mut bytes, logs);
        for (file, b) in self.files.iter().zip(bytes) {
            outputs::append(file, &b, "event")?;
        }
        Ok(Control::Continue)
    }

    /// A session's end, which the HParams tab shows as its status; an
    /// interrupted run has none (it may yet be resumed).
    fn on_train_end(&mut self, outcome: &Outcome) -> Result<()> {
        let (Some(file), Some(_)) = (self.files.get(2), &self.session) else {
            return Ok(());
        };
        let status = match outcome {
            Outcome::Finished => 1,
            Outcome::Interrupted { .. } => return Ok(()),
            _ => 2,
        };
        let end = tfevents::SessionEndInfo {
            status,
            end_time_secs: now(),
        };
        let mut body = vec![];
        tfevents::hparams(&mut body, now(), HParams::SessionEnd(end));
        outputs::append(file, &body, "event")
    }
}
