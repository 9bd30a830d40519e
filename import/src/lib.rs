//! `rosetta import`: moves a legacy chat server's database into Rosetta's storage so that old
//! accounts keep working (same ids, same passwords, same friends, groups and stored messages).
//!
//! One module per legacy system, each following section N of `shared/legacy-schemas.md`:
//! QtQQ ([`qtqq`]), SysOfIMPS ([`imps`]), CloudChat ([`cloudchat`]), DPC ([`dpc`], with the
//! file server's bytes) and OurChat ([`ourchat`]).
//!
//! An import reads the whole legacy database first and plans every row (skipping, with a
//! reason, what cannot be imported). Users are then hashed (argon2id, off the async workers)
//! and committed in batches, so an interrupted import keeps them and its rerun resumes after
//! them; everything else is written in ONE transaction, so a failure there leaves no half of
//! it. `--dry-run` is the same run with every write rolled back. Imports are idempotent:
//! users and groups keep their legacy ids (or are found again by their legacy handle),
//! messages carry a deterministic `client_message_id`, and rows already present are counted
//! as such and left alone.

pub mod cloudchat;
pub mod dpc;
pub mod imps;
mod legacy;
pub mod ourchat;
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
    /// Homat3/CloudChat (MySQL `cloudchat`), whose clients speak the CloudChat JSON protocol.
    Cloudchat,
    /// The DPC Python servers (MySQL `mydage` plus the file server's directory).
    Dpc,
    /// SkyUOI/OurChat 2024 (MySQL `OurChat`), whose clients speak the OurChat WebSocket protocol.
    Ourchat,
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
    /// The files service's blob store, where imported files' bytes go (the node's
    /// configured store: `<data_dir>/blobs` by default).
    pub store: Option<std::sync::Arc<dyn object_store::ObjectStore>>,
    /// Plan and count everything, then roll the writes back.
    pub dry_run: bool,
}

/// Runs one import and returns its summary.
pub async fn run(options: &Options) -> anyhow::Result<Summary> {
    let target = rosetta_db::connect(&options.to).await?;
    let mut summary = match options.system {
        System::Qtqq => qtqq::import(&options.from, &target, options).await,
        System::Sysofimps => imps::import(&options.from, &target, options).await,
        System::Cloudchat => cloudchat::import(&options.from, &target, options).await,
        System::Dpc => dpc::import(&options.from, &target, options).await,
        System::Ourchat => ourchat::import(&options.from, &target, options).await,
    }?;
    summary.finish();
    Ok(summary)
}
