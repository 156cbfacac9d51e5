//! What observes a run of [`crate::fit`], with Keras's callback contract:
//! told when training, each epoch and each batch begin and end, and able
//! to stop the run after an epoch. The observers themselves: the CSV log,
//! the progress display, the run record, Keras's TerminateOnNaN, History,
//! and the best/final summary a sweep reports.

mod csv_logger;
mod progress;
mod record;
mod tensorboard;

use std::path::Path;

use anyhow::Result;

use crate::config::Experiment;

pub use crate::fit::{Callback, CallbackList, Control};
use crate::fit::{EpochLogs, Outcome};
use crate::keras_csv::{LOSS, VAL_ACC};

pub use csv_logger::CsvLogger;
pub use progress::{KerasProgress, Tick, metrics_line, sweep_bar};
pub use record::{Ending, RecordWriter, RunRecord, VERSIONS, Versions};

/// One run, as an optional observer sees it when it is made.
pub struct RunInfo<'a> {
    /// `<preset>/seed<N>`, or in a `--vary` grid `<knob>=<v>/…/seed<N>`.
    pub name: String,
    pub csv: &'a Path,
    pub experiment: &'a Experiment,
    pub seed: u64,
}

/// A run's name: `<prefix>/seed<N>`, the prefix its preset or setting.
pub fn run_name(prefix: &str, seed: u64) -> String {
    format!("{prefix}/seed{seed}")
}

/// An optional observer's flags: checked before anything is written, and
/// asked for each run's observer.
pub trait Optional {
    /// `runs`: the names of the runs the command trains; `fresh`: whether
    /// they start anew (neither replacing earlier ones nor resuming), so
    /// that what earlier runs of those names left is refused.
    fn check(&self, runs: &[String], fresh: bool) -> Result<()>;
    fn observer(&self, run: &RunInfo) -> Result<Option<Box<dyn Callback>>>;
}

/// Observers a run may get beyond its CSV, record, summary and progress,
/// each with flags of its own: a new one is a file of its own (its flags,
/// implementing [`Optional`], and its callback) and one entry in this
/// list, for `train`, `resume`, `sweep` and `sweep --resume` alike.
macro_rules! optional_observers {
    ($($name:ident: $flags:ty),* $(,)?) => {
        #[derive(clap::Args, Clone, Debug, Default)]
        pub struct Extras {
            $(#[command(flatten)] pub $name: $flags,)*
        }

        impl Extras {
            pub fn check(&self, _runs: &[String], _fresh: bool) -> Result<()> {
                $(Optional::check(&self.$name, _runs, _fresh)?;)*
                Ok(())
            }

            pub fn observers(&self, _run: &RunInfo) -> Result<Vec<Box<dyn Callback>>> {
                let all: Vec<Option<Box<dyn Callback>>> =
                    vec![$(Optional::observer(&self.$name, _run)?),*];
                Ok(all.into_iter().flatten().collect())
            }
        }
    };
}

optional_observers! {
    tensorboard: tensorboard::TensorBoard,
}

/// One run's observers, the same for `train`, `resume`, `sweep` and
/// `sweep --resume`.
pub struct RunObservers {
    /// `train`'s Keras progress bar, or a tick of a sweep's bar.
    pub progress: Box<dyn Callback>,
    pub csv: CsvLogger,
    pub record: RecordWriter,
    pub summary: BestAndLast,
    pub nan: TerminateOnNaN,
    pub extras: Vec<Box<dyn Callback>>,
}

impl RunObservers {
    pub fn new(
        progress: Box<dyn Callback>,
        run: &RunInfo,
        record: RecordWriter,
        extras: &Extras,
    ) -> Result<Self> {
        Ok(RunObservers {
            progress,
            csv: CsvLogger::new(run.csv.to_path_buf()),
            record,
            summary: BestAndLast::default(),
            nan: TerminateOnNaN,
            extras: extras.observers(run)?,
        })
    }

    pub fn list(&mut self) -> CallbackList<'_, 'static> {
        let fixed = [
            &mut *self.progress as &mut dyn Callback,
            &mut self.csv,
            &mut self.record,
            &mut self.summary,
            &mut self.nan,
        ];
        CallbackList::new(
            fixed
                .into_iter()
                .chain(self.extras.iter_mut().map(|c| &mut **c)),
        )
    }
}

/// Keras's History: every epoch's logs, kept in memory.
#[derive(Debug, Default)]
pub struct History(pub Vec<EpochLogs>);

impl Callback for History {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        self.0.push(*logs);
        Ok(Control::Continue)
    }
}

/// Keras's TerminateOnNaN, checked when an epoch ends (not after every
/// batch, which would make every step wait for the device): a NaN or
/// infinite training loss ends the run after that epoch's row is written.
#[derive(Debug, Default)]
pub struct TerminateOnNaN;

impl Callback for TerminateOnNaN {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        Ok(if logs.metrics[LOSS].is_finite() {
            Control::Continue
        } else {
            Control::Stop(Outcome::Diverged { epoch: logs.epoch })
        })
    }
}

/// A run's final and best validation accuracy, and the epoch of the best;
/// `None` for a run that did not finish.
#[derive(Debug, Default)]
pub struct BestAndLast {
    /// The last and best so far are public so a checkpoint can keep them:
    /// a resumed run's summary must come out as an unbroken run's.
    pub last: f64,
    pub best: Option<(f64, i64)>,
    pub result: Option<SeedSummary>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedSummary {
    pub final_acc: f64,
    pub best_acc: f64,
    pub best_epoch: i64,
}

impl Callback for BestAndLast {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        let acc = logs.metrics[VAL_ACC];
        self.last = acc;
        if self.best.is_none_or(|(b, _)| acc > b) {
            self.best = Some((acc, logs.epoch));
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, outcome: &Outcome) -> Result<()> {
        if let (Outcome::Finished, Some((best_acc, best_epoch))) = (outcome, self.best) {
            self.result = Some(SeedSummary {
                final_acc: self.last,
                best_acc,
                best_epoch,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keras_csv::LOGS;

    fn logs(epoch: i64, loss: f64, val: f64) -> EpochLogs {
        let mut metrics = [0.0; LOGS.len()];
        (metrics[LOSS], metrics[VAL_ACC]) = (loss, val);
        EpochLogs::from_row(epoch, metrics)
    }

    #[test]
    fn every_callback_sees_the_epoch_and_the_first_stop_request_wins() {
        let (mut nan, mut history) = (TerminateOnNaN, History::default());
        let mut list = CallbackList::new([
            &mut nan as &mut dyn Callback,
            &mut history as &mut dyn Callback,
        ]);
        assert_eq!(list.epoch_end(&logs(0, 0.5, 0.9)).unwrap(), None);
        assert_eq!(
            list.epoch_end(&logs(1, f64::NAN, 0.9)).unwrap(),
            Some(Outcome::Diverged { epoch: 1 })
        );
        drop(list);
        assert_eq!(history.0.len(), 2, "the stopping epoch is still logged");
    }

    #[test]
    fn summary_keeps_the_first_best_epoch_and_only_finished_runs() {
        let mut s = BestAndLast::default();
        for (e, v) in [0.8, 0.95, 0.95, 0.9].into_iter().enumerate() {
            s.on_epoch_end(&logs(e as i64, 0.1, v)).unwrap();
        }
        s.on_train_end(&Outcome::Finished).unwrap();
        assert_eq!(
            s.result,
            Some(SeedSummary {
                final_acc: 0.9,
                best_acc: 0.95,
                best_epoch: 1
            })
        );
        let mut d = BestAndLast::default();
        d.on_epoch_end(&logs(0, f64::NAN, 0.5)).unwrap();
        d.on_train_end(&Outcome::Diverged { epoch: 0 }).unwrap();
        assert_eq!(d.result, None);
    }
}
