//! Training that can be resumed, and resuming it: `train` keeps a checkpoint
//! beside its CSV (the [`CheckpointWriter`] callback), and `binclass resume`
//! checks a killed run's CSV, record and checkpoint against each other,
//! trims the CSV back to the checkpoint, and continues the run from the
//! next epoch with the same callbacks, so that its CSV ends byte-identical
//! to that of a run never stopped.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use rand_chacha::ChaCha8Rng;
use tch::nn;

use crate::callbacks::{
    Callback, Checkpoint, CheckpointWriter, CsvLogger, KerasProgress, RecordWriter, RunRecord,
    Shared, TerminateOnNaN, VERSIONS, checkpoint_path,
};
use crate::data::Split;
use crate::fit::{self, Order, Outcome, Plan};
use crate::model::Network;
use crate::optim::Resumable;
use crate::outputs::{self, RunFiles};

/// A run about to train (from its first epoch, or resumed), with the state
/// its checkpoint shares.
pub struct Training {
    pub optimizer: Rc<RefCell<Resumable>>,
    pub shuffle: Rc<RefCell<ChaCha8Rng>>,
    pub plan: Plan,
    pub record: RecordWriter,
}

/// Trains `net` with `train`'s callbacks and a checkpoint after every
/// epoch; returns how the run ended and its record.
pub fn fit_checkpointed(
    net: &mut Network,
    vs: &nn::VarStore,
    data: &Split,
    run: Training,
    files: &RunFiles,
    verbose: u8,
) -> Result<(Outcome, RunRecord)> {
    let Training {
        optimizer,
        shuffle,
        plan,
        mut record,
    } = run;
    let params = vs
        .trainable_variables()
        .into_iter()
        .next()
        .context("the network has no parameters")?;
    let mut checkpoint = CheckpointWriter::new(
        files.csv.clone(),
        record.record.experiment.clone(),
        record.record.seed,
        Shared {
            params,
            optimizer: optimizer.clone(),
            shuffle: shuffle.clone(),
        },
    );
    let mut progress = KerasProgress::new(verbose);
    let mut csv = CsvLogger::new(files.csv.clone());
    // The checkpoint comes after the CSV, whose length it records.
    let callbacks: &mut [&mut dyn Callback] = &mut [
        &mut progress,
        &mut csv,
        &mut record,
        &mut TerminateOnNaN,
        &mut checkpoint,
    ];
    let mut opt = optimizer;
    let outcome = fit::fit_in_order(net, &mut opt, data, plan, Order::Shared(shuffle), callbacks)?;
    Ok((outcome, record.record))
}

/// Removes a finished run's checkpoint (it is of no use once the model is saved).
pub fn remove_checkpoint(csv: &Path) -> Result<()> {
    remove_file(&checkpoint_path(csv))
}

/// Removes `path`, which may already be gone.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A killed or interrupted run, checked and ready to continue.
pub struct Stopped {
    pub files: RunFiles,
    pub record: RunRecord,
    pub checkpoint: Checkpoint,
}

/// The run whose CSV is `csv`, with every check made before anything is
/// changed: each mismatch is an error saying what differs.
pub fn open(csv: &Path) -> Result<Stopped> {
    if !csv.is_file() {
        bail!("{}: no such run CSV", csv.display());
    }
    // Before anything is read: a run still writing it (the train, or
    // another resume) would interleave its rows with ours.
    outputs::hold(csv)?;
    let files = RunFiles {
        csv: csv.to_path_buf(),
        json: outputs::record_path(csv),
    };
    let record = RunRecord::read(&files.json)?;
    // The record says finished before the model is saved, and the
    // checkpoint goes only after it: a run killed (or out of disk) between
    // the two is resumed from its last epoch's checkpoint to save the model.
    let unsaved =
        record.finished && checkpoint_path(csv).exists() && !outputs::model_path(csv).exists();
    if record.finished && !unsaved {
        bail!(
            "{}: the run finished ({} epochs); there is nothing to resume",
            csv.display(),
            record.epochs_completed
        );
    }
    if let Some(why) = record
        .stopped
        .as_deref()
        .filter(|w| !w.starts_with("interrupted"))
    {
        bail!(
            "{}: the run ended on its own ({why}); resuming cannot change that",
            csv.display()
        );
    }
    let path = checkpoint_path(csv);
    if !path.exists() {
        bail!(
            "{}: no checkpoint {} (only runs of `binclass train` keep one while training)",
            csv.display(),
            path.display()
        );
    }
    let checkpoint = Checkpoint::read(&path)?;
    check_matches(&record, &checkpoint, &files.csv)?;
    Ok(Stopped {
        files,
        record,
        checkpoint,
    })
}

/// The checkpoint, the record and the CSV describe the same run, on this
/// libtorch.
fn check_matches(record: &RunRecord, c: &Checkpoint, csv: &Path) -> Result<()> {
    let ckpt = checkpoint_path(csv);
    let (ckpt, json) = (ckpt.display(), outputs::record_path(csv));
    let json = json.display();
    if c.seed != record.seed {
        bail!(
            "{ckpt} is of seed {}, but {json} of seed {}",
            c.seed,
            record.seed
        );
    }
    if let Some(key) = differing_setting(&c.experiment, &record.experiment)? {
        bail!("{ckpt} and {json} differ in the experiment's `{key}`");
    }
    if c.device != record.device {
        bail!(
            "{ckpt} was written on {}, but {json} says {}",
            c.device,
            record.device
        );
    }
    if c.versions.libtorch != VERSIONS.libtorch {
        bail!(
            "{ckpt} was written with libtorch {}, this binclass uses {}: the continuation would not be exact",
            c.versions.libtorch,
            VERSIONS.libtorch
        );
    }
    let completed = record.epochs_completed as i64;
    if completed < c.epoch + 1 {
        bail!(
            "{ckpt} is at epoch {}, but {json} counts only {completed} epochs",
            c.epoch
        );
    }
    let len = std::fs::metadata(csv)
        .with_context(|| format!("cannot read {}", csv.display()))?
        .len();
    if len < c.csv_len {
        bail!(
            "{} is {len} bytes, shorter than the {} bytes {ckpt} recorded after epoch {}",
            csv.display(),
            c.csv_len,
            c.epoch
        );
    }
    check_cut(csv, c.csv_len, c.epoch, &checkpoint_path(csv))
}

/// The length `ckpt` recorded cuts the CSV right after the row of `epoch`
/// (the header and one line per epoch), so trimming there drops only rows
/// written after it, never a row it counts or a part of one.
pub fn check_cut(csv: &Path, len: u64, epoch: i64, ckpt: &Path) -> Result<()> {
    let file = File::open(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let mut head = BufReader::new(file).take(len);
    let (mut lines, mut last) = (0, None);
    loop {
        let buf = head
            .fill_buf()
            .with_context(|| format!("cannot read {}", csv.display()))?;
        let Some(&end) = buf.last() else { break };
        lines += buf.iter().filter(|b| **b == b'\n').count() as i64;
        last = Some(end);
        let n = buf.len();
        head.consume(n);
    }
    if last != Some(b'\n') || lines != epoch + 2 {
        bail!(
            "{}: its first {len} bytes, where {} says epoch {epoch}'s row ends, are not the header and {} whole rows: a corrupt checkpoint",
            csv.display(),
            ckpt.display(),
            epoch + 1
        );
    }
    Ok(())
}

/// The first experiment setting in which `a` and `b` differ, by name.
pub fn differing_setting(
    a: &crate::config::Experiment,
    b: &crate::config::Experiment,
) -> Result<Option<String>> {
    let (a, b) = (serde_json::to_value(a)?, serde_json::to_value(b)?);
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Ok((a != b).then(|| "settings".to_string()));
    };
    Ok(a.keys()
        .chain(b.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .cloned())
}

/// Cuts the CSV back to the checkpoint's length, dropping any row (whole or
/// partial) written after it.
pub fn trim_csv(csv: &Path, len: u64) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(csv)
        .and_then(|f| f.set_len(len))
        .with_context(|| format!("cannot trim {}", csv.display()))
}

/// The state training continues from: the optimiser restored and the
/// shuffle stream at its saved position.
pub fn restored(stopped: &Stopped, vs: &nn::VarStore) -> Result<Training> {
    let c = &stopped.checkpoint;
    let e = &stopped.record.experiment;
    let mut optimizer = Resumable::new(e.optimizer, vs, e.lr)?;
    optimizer.restore(&c.optimizer)?;
    let mut shuffle = crate::rng::stream(stopped.record.seed, crate::rng::Stream::Shuffle);
    shuffle.set_word_pos(c.shuffle_word_pos);
    let next = c.epoch + 1;
    Ok(Training {
        optimizer: Rc::new(RefCell::new(optimizer)),
        shuffle: Rc::new(RefCell::new(shuffle)),
        plan: Plan {
            initial_epoch: next,
            ..Plan::new(e.epochs, e.batch_size, e.train_len())
        },
        record: RecordWriter::resuming(stopped.record.clone(), stopped.files.json.clone(), next),
    })
}
