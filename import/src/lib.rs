//! `rosetta import`: moves a legacy chat server's database into Rosetta's storage so that old
//! accounts keep working (same ids, same passwords, same friends, groups and stored messages).
//!
//! Implemented: QtQQ ([`qtqq`]) and SysOfIMPS ([`imps`], users, friends, messages); the storage reference is `shared/legacy-schemas.md`.
//! An import reads the whole legacy database first, plans every row (skipping, with a reason,
//! what cannot be imported), hashes passwords off the async workers, then writes everything
//! in ONE transaction on the target database: a failure leaves the target untouched, and
//! `--dry-run` is the same run rolled back. Imports are idempotent: users and groups keep their
//! legacy ids, messages carry a deterministic `client_message_id`, and rows already present
//! are counted as such and left alone.

pub mod imps;
pub mod qtqq;
mod summary;
mod write;

pub use summary::{Counts, Summary};

/// A legacy system the importer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// UgOrange/QtQQ (MySQL `QQ_Database`), whose clients speak the pipe protocol.
    Qtqq,
    /// liwenhaosuper/SysOfIMPS (MySQL `impsdev`, dump.sql shape), whose clients speak IMPS.
    Sysofimps,
}

/// What to import and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub system: System,
    /// The legacy database, e.g. `mysql://root@127.0.0.1:3306/QQ_Database`.
    pub from: String,
    /// Rosetta's database (`sqlite://…` or `postgres://…`); migrations run first.
    pub to: String,
    /// Where the legacy server kept uploaded files (unused for QtQQ: it stored none).
    pub files_dir: Option<std::path::PathBuf>,
    /// Plan and count everything, then roll the writes back.
    pub dry_run: bool,
}

/// Runs one import and returns its summary.
pub async fn run(options: &Options) -> anyhow::Result<Summary> {
    let target = rosetta_db::connect(&options.to).await?;
    match options.system {
        System::Qtqq => qtqq::import(&options.from, &target, options).await,
        System::Sysofimps => imps::import(&options.from, &target, options).await,
    }
}
