//! Keras-style progress on stderr, as `fit(verbose=…)` prints it.
//! 0: silent. 1: `Epoch k/N`, a live bar with the running loss and accuracy,
//! then the epoch's line with validation figures. 2: one line per epoch.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Callback, Control};
use crate::fit::{EpochLogs, Plan, Running};
use crate::keras_csv::TRAINING;
use crate::outputs::note;

/// Reading running metrics waits for the device, so the bar asks this often.
const REFRESH: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct KerasProgress {
    verbose: u8,
    epochs: i64,
    steps: i64,
    bar: Option<ProgressBar>,
    /// When the running figures were last read; `None` before the first read.
    last_read: Option<Instant>,
    /// What the bar shows: the running figures as of the last read, or the
    /// previous epoch's when none was read in this epoch yet.
    message: String,
}

impl KerasProgress {
    pub fn new(verbose: u8) -> Self {
        KerasProgress {
            verbose,
            ..Default::default()
        }
    }

    /// Moves the bar to `step`; `read` gives the running figures, called
    /// only about every REFRESH because it waits for the device.
    fn show_step(&mut self, step: i64, read: impl FnOnce() -> Vec<f64>) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(step as u64);
        // Epochs are often shorter than REFRESH: the clock runs across them,
        // so figures are read about every REFRESH, wherever in an epoch.
        if self.last_read.is_none_or(|t| t.elapsed() >= REFRESH) {
            self.message = running_line(&read());
            bar.set_message(self.message.clone());
            self.last_read = Some(Instant::now());
        }
    }
}

impl Callback for KerasProgress {
    fn on_train_begin(&mut self, plan: &Plan) -> Result<()> {
        self.epochs = plan.epochs;
        self.steps = plan.steps();
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: i64) -> Result<()> {
        if self.verbose == 0 {
            return Ok(());
        }
        note(&format!("Epoch {}/{}", epoch + 1, self.epochs));
        if self.verbose == 1 && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(self.steps as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template("{pos}/{len} [{bar:30}] - ETA: {eta} - {msg}")
                    .expect("static template")
                    .progress_chars("=>."),
            );
            bar.set_message(self.message.clone());
            self.bar = Some(bar);
        }
        Ok(())
    }

    fn on_batch_end(&mut self, running: &Running) {
        self.show_step(running.step, || running.read());
    }

    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.message = line(logs.logs().take(TRAINING.len()));
        if self.verbose == 0 {
            return Ok(Control::Continue);
        }
        let head = if self.verbose == 1 {
            format!("{0}/{0} [{1}]", self.steps, "=".repeat(30))
        } else {
            format!("{0}/{0}", self.steps)
        };
        note(&format!(
            "{head} - {:.0}s {}/step - {}",
            logs.seconds,
            duration(logs.seconds / self.steps as f64),
            metrics_line(logs)
        ));
        Ok(Control::Continue)
    }
}

/// A sweep's bar: seed-epochs done out of all, what is training, time left.
pub fn sweep_bar(verbose: u8, len: u64) -> ProgressBar {
    if verbose == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} seed-epochs, {elapsed} elapsed, ETA {eta}",
        )
        .expect("static template")
        .progress_chars("=>."),
    );
    bar
}

/// Moves a sweep's bar one seed-epoch on at each epoch of its run.
pub struct Tick(pub ProgressBar);

impl Callback for Tick {
    fn on_epoch_end(&mut self, _logs: &EpochLogs) -> Result<Control> {
        self.0.inc(1);
        Ok(Control::Continue)
    }
}

/// `loss: … - binary_accuracy: …`, the training figures as Keras's bar
/// shows them.
fn running_line(training: &[f64]) -> String {
    line(TRAINING.iter().copied().zip(training.iter().copied()))
}

/// `loss: … - binary_accuracy: … - val_loss: … - val_binary_accuracy: …`
pub fn metrics_line(l: &EpochLogs) -> String {
    line(l.logs())
}

fn line<'a>(named: impl Iterator<Item = (&'a str, f64)>) -> String {
    let shown: Vec<String> = named.map(|(n, v)| format!("{n}: {v:.4}")).collect();
    shown.join(" - ")
}

/// Keras's per-step time: `2ms`, `850us`, `1s`.
fn duration(seconds: f64) -> String {
    match seconds {
        1.0.. => format!("{seconds:.0}s"),
        1e-3.. => format!("{:.0}ms", seconds * 1e3),
        _ => format!("{:.0}us", seconds * 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(epoch: i64, loss: f64) -> EpochLogs {
        EpochLogs::new(epoch, &[loss, 0.5, 0.0, 0.0], 0.01)
    }

    #[test]
    fn the_bar_shows_the_last_read_or_the_last_epoch_not_each_epochs_first_step() {
        let mut p = KerasProgress::new(0);
        p.bar = Some(ProgressBar::hidden());
        let mut reads = 0;
        p.show_step(1, || {
            reads += 1;
            vec![0.9, 0.5]
        });
        for step in 2..=5 {
            p.show_step(step, || panic!("read again within {REFRESH:?}"));
        }
        assert_eq!(
            (reads, p.message.as_str()),
            (1, "loss: 0.9000 - binary_accuracy: 0.5000")
        );
        p.on_epoch_end(&logs(0, 0.25)).unwrap();
        // A short next epoch keeps showing the figures of the one before it,
        // not a stale reading of its own first step.
        p.bar = Some(ProgressBar::hidden());
        p.show_step(1, || panic!("step 1 forced a read"));
        assert_eq!(p.message, "loss: 0.2500 - binary_accuracy: 0.5000");
        std::thread::sleep(REFRESH);
        p.show_step(2, || vec![0.125, 0.75]);
        assert_eq!(p.message, "loss: 0.1250 - binary_accuracy: 0.7500");
    }

    #[test]
    fn step_times_read_like_keras() {
        assert_eq!(duration(2.4), "2s");
        assert_eq!(duration(0.0021), "2ms");
        assert_eq!(duration(0.000_085), "85us");
    }
}
