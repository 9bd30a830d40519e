//! The live line shown on stderr during a run (hidden with `--json` or `--quiet`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar when the run is bounded by a count, a spinner otherwise.
pub fn line(total: Option<u64>, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => {
            let bar = ProgressBar::new(total);
            // Constant templates: they parse, so `expect` cannot fire.
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} {spinner} {pos} {msg}")
                    .expect("valid template"),
            );
            bar
        }
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
