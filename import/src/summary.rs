//! What an import did, per kind of row.

use std::{collections::BTreeMap, fmt};

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
}

impl Summary {
    pub fn kind(&mut self, kind: &'static str) -> &mut Counts {
        self.kinds.entry(kind).or_default()
    }

    pub fn read(&mut self, kind: &'static str) {
        self.kind(kind).read += 1;
    }

    pub fn skip(&mut self, kind: &'static str, reason: impl Into<String>) {
        *self.kind(kind).skipped.entry(reason.into()).or_default() += 1;
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
