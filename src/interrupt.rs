//! Ctrl-C and SIGTERM end a run at the next step, cleanly: the epoch under
//! way is dropped, every record says where the run stopped, and the process
//! exits with 130 as a shell expects of an interrupted command. A second
//! signal ends the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Once};

static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// The error a command returns when it stopped on a signal.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Routes SIGINT and SIGTERM to [`requested`]; call before training.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The conditional exit first: it fires only once the flag is set,
            // that is, on the second signal.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, REQUESTED.clone());
            let _ = signal_hook::flag::register(sig, REQUESTED.clone());
        }
    });
}

/// Whether a signal asked the run to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
