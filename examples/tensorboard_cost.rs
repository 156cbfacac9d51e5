//! What `--tensorboard` adds to each run's epoch: a sweep's 100 runs
//! writing their events for 100 epochs as the callback does (each epoch's
//! encoded, two files opened, appended, closed), timed alone, so that the
//! figure does not drown in training time on a busy machine. A 100-seed
//! baseline sweep spends about 800 µs of wall time per run and epoch
//! (7.93 s, README's table). `cargo run --release --example tensorboard_cost`
use std::time::Instant;

use binclass::callbacks::{Extras, RunInfo};
use binclass::config::Experiment;
use binclass::fit::{EpochLogs, Plan};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut extras = Extras::default();
    extras.tensorboard.dir = Some(dir.path().join("tb"));
    let exp = Experiment::preset("baseline")?;
    let csv = dir.path().join("r.csv");
    let (runs, epochs) = (100, 100);
    let mut observers = vec![];
    for seed in 0..runs {
        let name = format!("baseline/seed{seed}");
        let run = RunInfo {
            name,
            csv: &csv,
            experiment: &exp,
            seed,
        };
        observers.extend(extras.observers(&run)?);
    }
    let plan = Plan::new(epochs, 30, 8000);
    for o in &mut observers {
        o.on_train_begin(&plan)?;
    }
    let start = Instant::now();
    for epoch in 0..epochs {
        for o in &mut observers {
            let v = 0.9 + epoch as f64 * 1e-4;
            let logs = EpochLogs::new(epoch, &[1.0 - v, v, 1.0 - v, v], 0.0);
            o.on_epoch_end(&logs)?;
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / (runs * epochs as u64) as f64;
    println!("{us:.1} µs per run and epoch ({runs} runs × {epochs} epochs)");
    Ok(())
}
