//! `binclass experiments`: the presets, each with every resolved setting.

use anyhow::Result;

use crate::config::{Experiment, PRESETS};

pub fn run() -> Result<()> {
    let mut text = String::new();
    for p in PRESETS {
        let e = Experiment::preset(p.name).expect("every listed preset exists");
        let settings: Vec<String> = e
            .settings()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        text += &format!("{}: {}\n    {}\n", p.name, p.what, settings.join(" "));
    }
    crate::outputs::stdout(&text)
}
