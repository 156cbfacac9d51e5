//! What observes a run of [`crate::fit`], with Keras's callback contract:
//! told when training, each epoch and each batch begin and end, and able
//! to stop the run after an epoch. The observers themselves: the CSV log,
//! the progress display, the run record, Keras's TerminateOnNaN, History,
//! and the best/final summary a sweep reports.

mod checkpoint;
mod csv_logger;
mod progress;
mod record;

use anyhow::Result;

use crate::fit::{EpochLogs, Outcome, Plan, Running};

pub use checkpoint::{Checkpoint, CheckpointWriter, Shared, checkpoint_path};
pub(crate) use checkpoint::{Stored, encode_state, metadata, read_file};
pub use csv_logger::CsvLogger;
pub use progress::{KerasProgress, Tick, metrics_line, sweep_bar};
pub use record::{RecordWriter, RunRecord, VERSIONS, Versions};

/// What a callback asks of the run after an epoch.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    Continue,
    /// End the run after this epoch (Keras's `model.stop_training = True`),
    /// with this outcome.
    Stop(Outcome),
}

pub trait Callback {
    /// `plan.initial_epoch` is where a continued run starts.
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: i64) -> Result<()> {
        Ok(())
    }
    fn on_batch_end(&mut self, _running: &Running) {}
    fn on_epoch_end(&mut self, _logs: &EpochLogs) -> Result<Control> {
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, _outcome: &Outcome) -> Result<()> {
        Ok(())
    }
}

/// A callback shared with whoever reads its state between epochs (a
/// sweep's checkpoint reads each seed's [`Summary`]).
impl<C: Callback> Callback for std::rc::Rc<std::cell::RefCell<C>> {
    fn on_train_begin(&mut self, plan: &Plan) -> Result<()> {
        self.borrow_mut().on_train_begin(plan)
    }
    fn on_epoch_begin(&mut self, epoch: i64) -> Result<()> {
        self.borrow_mut().on_epoch_begin(epoch)
    }
    fn on_batch_end(&mut self, running: &Running) {
        self.borrow_mut().on_batch_end(running)
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        self.borrow_mut().on_epoch_end(logs)
    }
    fn on_train_end(&mut self, outcome: &Outcome) -> Result<()> {
        self.borrow_mut().on_train_end(outcome)
    }
}

/// Keras's CallbackList: the callbacks of one run, called in order.
pub struct CallbackList<'a, 'b>(Vec<&'a mut (dyn Callback + 'b)>);

impl<'a, 'b> CallbackList<'a, 'b> {
    pub fn new(callbacks: impl IntoIterator<Item = &'a mut (dyn Callback + 'b)>) -> Self {
        CallbackList(callbacks.into_iter().collect())
    }

    pub fn train_begin(&mut self, plan: &Plan) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_begin(plan))
    }

    pub fn epoch_begin(&mut self, epoch: i64) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_epoch_begin(epoch))
    }

    pub fn batch_end(&mut self, running: &Running) {
        self.0.iter_mut().for_each(|c| c.on_batch_end(running));
    }

    /// Every callback sees the logs; the first stop request ends the run.
    pub fn epoch_end(&mut self, logs: &EpochLogs) -> Result<Option<Outcome>> {
        let mut stop = None;
        for c in &mut self.0 {
            if let Control::Stop(outcome) = c.on_epoch_end(logs)? {
                stop.get_or_insert(outcome);
            }
        }
        Ok(stop)
    }

    pub fn train_end(&mut self, outcome: &Outcome) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_end(outcome))
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
        Ok(if logs.loss.is_finite() {
            Control::Continue
        } else {
            Control::Stop(Outcome::Diverged { epoch: logs.epoch })
        })
    }
}

/// A run's final and best validation accuracy, and the epoch of the best;
/// `None` for a run that did not finish.
#[derive(Debug, Default)]
pub struct Summary {
    /// The last and best so far are public so a sweep's checkpoint can keep
    /// them: a resumed seed's summary must come out as an unbroken run's.
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

impl Callback for Summary {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        self.last = logs.val_binary_accuracy;
        if self.best.is_none_or(|(b, _)| logs.val_binary_accuracy > b) {
            self.best = Some((logs.val_binary_accuracy, logs.epoch));
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

    fn logs(epoch: i64, loss: f64, val: f64) -> EpochLogs {
        EpochLogs {
            epoch,
            loss,
            binary_accuracy: 0.0,
            val_loss: 0.0,
            val_binary_accuracy: val,
            seconds: 0.0,
        }
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
        let mut s = Summary::default();
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
        let mut d = Summary::default();
        d.on_epoch_end(&logs(0, f64::NAN, 0.5)).unwrap();
        d.on_train_end(&Outcome::Diverged { epoch: 0 }).unwrap();
        assert_eq!(d.result, None);
    }
}
