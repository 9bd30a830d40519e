//! What an import did, per kind of row, with a live progress bar per kind on a terminal.

use std::{collections::BTreeMap, fmt};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Counts for one kind of row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Legacy rows read.
    pub read: u64,
    /// Rows written to the target.
    pub imported: u64,
    /// Rows the target already had (an earlier import).
    pub already: u64,
    /// Rows not imported, by reason.
    pub skipped: BTreeMap<String, u64>,
}

impl Counts {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// The summary of one import.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub dry_run: bool,
    pub kinds: BTreeMap<&'static str, Counts>,
    /// Things worth a look that did not stop a row (e.g. lossy text, unparseable times).
    pub notes: BTreeMap<String, u64>,
    progress: Progress,
}

/// One bar per kind of row: its length grows as legacy rows are read, its position as they
/// are imported, found already there or skipped. indicatif hides it when stderr is not a
/// terminal, so logs and tests see only the summary.
#[derive(Debug, Clone, Default)]
struct Progress {
    multi: MultiProgress,
    bars: BTreeMap<&'static str, ProgressBar>,
}

impl Progress {
    fn bar(&mut self, kind: &'static str) -> &ProgressBar {
        let multi = &self.multi;
        self.bars.entry(kind).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>16} {wide_bar} {pos}/{len} {per_sec}")
                    .expect("static template"),
            );
            bar.set_prefix(kind);
            bar
        })
    }
}

impl Summary {
    pub fn new(dry_run: bool) -> Self {
        Self {
            dry_run,
            ..Self::default()
        }
    }

    pub fn kind(&mut self, kind: &'static str) -> &mut Counts {
        self.kinds.entry(kind).or_default()
    }

    pub fn read(&mut self, kind: &'static str) {
        self.kind(kind).read += 1;
        self.progress.bar(kind).inc_length(1);
    }

    pub fn imported(&mut self, kind: &'static str, n: u64) {
        self.kind(kind).imported += n;
        self.progress.bar(kind).inc(n);
    }

    pub fn already(&mut self, kind: &'static str, n: u64) {
        self.kind(kind).already += n;
        self.progress.bar(kind).inc(n);
    }

    pub fn skip(&mut self, kind: &'static str, reason: impl Into<String>) {
        *self.kind(kind).skipped.entry(reason.into()).or_default() += 1;
        self.progress.bar(kind).inc(1);
    }

    /// Ends the bars, leaving them on the terminal above the summary.
    pub fn finish(&mut self) {
        for bar in self.progress.bars.values() {
            bar.finish();
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        *self.notes.entry(note.into()).or_default() += 1;
    }

    /// Rows written, over every kind.
    pub fn imported_total(&self) -> u64 {
        self.kinds.values().map(|c| c.imported).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        writeln!(
            f,
            "{:<18} {:>8} {:>8} {:>8} {:>8}",
            "kind", "read", "imported", "already", "skipped"
        )?;
        for (kind, c) in &self.kinds {
            writeln!(
                f,
                "{kind:<18} {:>8} {:>8} {:>8} {:>8}",
                c.read,
                c.imported,
                c.already,
                c.skipped_total()
            )?;
            for (reason, n) in &c.skipped {
                writeln!(f, "    skipped {n}: {reason}")?;
            }
        }
        for (note, n) in &self.notes {
            writeln!(f, "note ({n}): {note}")?;
        }
        Ok(())
    }
}
