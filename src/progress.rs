//! Keras-style progress on stderr, as `fit(verbose=…)` prints it.
//! 0: silent. 1: `Epoch k/N`, a live bar with the running loss and accuracy,
//! then the epoch's line with validation figures. 2: one line per epoch.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fit::{Callback, EpochLogs, Plan, Running};

/// Reading running metrics waits for the device, so the bar asks this often.
const REFRESH: Duration = Duration::from_millis(200);

pub struct KerasProgress {
    verbose: u8,
    epochs: i64,
    steps: i64,
    bar: Option<ProgressBar>,
    last_read: Instant,
}

impl KerasProgress {
    pub fn new(verbose: u8) -> Self {
        KerasProgress {
            verbose,
            epochs: 0,
            steps: 0,
            bar: None,
            last_read: Instant::now(),
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
        eprintln!("Epoch {}/{}", epoch + 1, self.epochs);
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
            self.bar = Some(bar);
            // Read after the first step, so every epoch's bar shows figures.
            self.last_read = Instant::now() - REFRESH;
        }
        Ok(())
    }

    fn on_batch_end(&mut self, running: &Running) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(running.step as u64);
        if self.last_read.elapsed() >= REFRESH {
            let (loss, acc) = running.read();
            bar.set_message(format!("loss: {loss:.4} - binary_accuracy: {acc:.4}"));
            self.last_read = Instant::now();
        }
    }

    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.verbose == 0 {
            return Ok(());
        }
        let head = if self.verbose == 1 {
            format!("{0}/{0} [{1}]", self.steps, "=".repeat(30))
        } else {
            format!("{0}/{0}", self.steps)
        };
        eprintln!(
            "{head} - {:.0}s {}/step - {}",
            logs.seconds,
            duration(logs.seconds / self.steps as f64),
            metrics_line(logs)
        );
        Ok(())
    }
}

/// `loss: … - binary_accuracy: … - val_loss: … - val_binary_accuracy: …`
pub fn metrics_line(l: &EpochLogs) -> String {
    format!(
        "loss: {:.4} - binary_accuracy: {:.4} - val_loss: {:.4} - val_binary_accuracy: {:.4}",
        l.loss, l.binary_accuracy, l.val_loss, l.val_binary_accuracy
    )
}

/// Keras's per-step time: `2ms`, `850us`, `1s`.
fn duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.0}s")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms", seconds * 1e3)
    } else {
        format!("{:.0}us", seconds * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_read_like_keras() {
        assert_eq!(duration(2.4), "2s");
        assert_eq!(duration(0.0021), "2ms");
        assert_eq!(duration(0.000_085), "85us");
    }
}
