//! Writing accepted sends: allocate the conversation seqs, store the messages and fan their
//! events out to every participant's log, in one transaction per batch of sends, and wake the
//! streams after the commit.
//!
//! One design for both backends: the [`Writer`] hands each send to a *lane*, a task that takes
//! every send queued for it (up to [`MAX_BATCH`]) and writes them together in ONE transaction
//! whose statement count does not grow with the batch ([`batch`]): group commit.
//!
//! - SQLite admits one writer, so it has one lane, and that lane owns its own connection (a
//!   pool of exactly one, opened with the shared pool's options): it never waits for the
//!   shared pool, and the driver keeps that connection's prepared statements.
//! - PostgreSQL commits concurrently: [`MessagingConfig::writer_lanes`] lanes over the shared
//!   pool, used by load. While fewer than [`ONE_LANE_BELOW`] jobs are in the writer, every job
//!   goes to the first lane, whose batches then hold whatever arrived while it wrote: a lane
//!   per few sends would commit a transaction per few sends (at 20 sends in flight, 16 lanes
//!   cost 2.6× the CPU per message of one; BENCHMARKS.md). Under more load a job goes to lane
//!   `conversation id % lanes`, so a conversation's row is wanted by one lane, not fought
//!   over by all. Lanes (and other processes) lock conversation rows and then log heads,
//!   each in id order, so they cannot deadlock whichever lane a job takes; sends a caller
//!   waits for keep their order, and concurrent sends had none before their seqs.
//!
//! A retried send (same sender and `client_message_id`) is found by the unique key inside the
//! write, not by a read before it ([`lane`]). A send that fails for any other reason fails
//! alone: its batch is written again send by send.
//!
//! [`MessagingConfig::writer_lanes`]: crate::MessagingConfig::writer_lanes

mod batch;
mod lane;
mod marks;
#[cfg(test)]
mod tests;

pub use marks::Mark;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rosetta_db::entity::messaging::message;
use rosetta_kit::{ApiError, ApiResult, tasks::Tasks};
use rosetta_proto::messaging::v1::SendMessageRequest;
use sea_orm::{DatabaseBackend, DatabaseConnection, sqlx, sqlx::sqlite::SqlitePoolOptions};
use tokio::sync::{mpsc, oneshot};

use crate::{
    conversations::Conversation,
    log::Events,
    policy::{Admission, Policy},
    presence::Liveness,
};

/// The most sends one batch transaction holds: bounds the transaction's size and lock time
/// (and keeps each multi-row statement far below the bind-parameter limits).
pub const MAX_BATCH: usize = 256;
/// Sends waiting for one lane; a caller finding it full waits for room.
const QUEUE: usize = 1024;
/// Bounds of the configured PostgreSQL lane count.
const MAX_LANES: usize = 64;
/// Jobs in the writer (queued or being written) below which one lane writes them all.
const ONE_LANE_BELOW: usize = 64;

/// A send that passed validation and policy, ready to be written.
pub struct Draft {
    pub conversation: Conversation,
    /// Who sends to whom; confirmed again inside the write by [`Policy::confirm`].
    pub admission: Admission,
    pub req: SendMessageRequest,
    pub now: i64,
}

impl Draft {
    fn sender(&self) -> i64 {
        self.admission.sender
    }
}

/// A written send: the stored message, whether it was stored by an earlier send with the
/// same `client_message_id` (a retry), and its private recipient's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message: message::Model,
    pub duplicate: bool,
    pub recipient: Recipient,
}

/// A private message's recipient's presence as the batch read it: one statement for the whole
/// batch inside its transaction, so that the answer's `recipient_online` costs no read (and
/// no connection hand-off) per send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// Not read: a group message, or a retry answered with what an earlier write stored.
    Unread,
    /// Read in the write; `None` when the recipient has no presence row (never present).
    Read(Option<Liveness>),
}

/// Writes drafts through its lanes.
pub struct Writer {
    lanes: Vec<mpsc::Sender<Job>>,
    /// Jobs queued or being written now: the load that spreads them over the lanes.
    in_flight: AtomicUsize,
    /// [`ONE_LANE_BELOW`] (tests spread even one job by conversation with 0).
    one_lane_below: usize,
    /// Batches that failed and were written again send by send (a deadlock would show here);
    /// the lanes count them, tests read them.
    #[cfg(test)]
    fallbacks: Arc<AtomicU64>,
}

/// What a lane is asked to write. Sends are nearly every job: boxing them to shrink the rare
/// mark would cost an allocation per send.
#[allow(clippy::large_enum_variant)]
enum Job {
    Send(SendJob),
    Mark(MarkJob),
}

struct SendJob {
    draft: Draft,
    span: tracing::Span,
    reply: oneshot::Sender<ApiResult<Stored>>,
}

struct MarkJob {
    mark: Mark,
    reply: oneshot::Sender<ApiResult<u64>>,
}

impl Writer {
    /// Spawns the lanes into `tasks` (so this runs inside a Tokio runtime): one on SQLite,
    /// `lanes` (clamped to 1..=64) on PostgreSQL. Once `tasks` is stopping, each lane refuses
    /// new sends but writes those it had accepted, then ends.
    pub fn new(
        db: &DatabaseConnection,
        events: Arc<Events>,
        policy: Arc<Policy>,
        lanes: usize,
        fanout_max_members: usize,
        tasks: &Tasks,
    ) -> Self {
        let (count, lane_db) = match db.get_database_backend() {
            DatabaseBackend::Sqlite => (1, own_sqlite_connection(db)),
            _ => (lanes.clamp(1, MAX_LANES), db.clone()),
        };
        let fallbacks = Arc::new(AtomicU64::new(0));
        let lanes = (0..count)
            .map(|_| {
                let (queue, jobs) = mpsc::channel(QUEUE);
                let lane = lane::Lane {
                    db: lane_db.clone(),
                    events: events.clone(),
                    policy: policy.clone(),
                    fallbacks: fallbacks.clone(),
                    fanout_max_members,
                };
                tasks.spawn(lane.run(jobs, tasks.stopping().clone()));
                queue
            })
            .collect();
        Self {
            lanes,
            in_flight: AtomicUsize::new(0),
            one_lane_below: ONE_LANE_BELOW,
            #[cfg(test)]
            fallbacks,
        }
    }

    /// Writes `draft` and wakes its recipients once committed; a retry answers the message an
    /// earlier send stored, marked duplicate.
    pub async fn write(&self, draft: Draft) -> ApiResult<Stored> {
        let conversation = draft.conversation.id;
        let (reply, written) = oneshot::channel();
        let job = Job::Send(SendJob {
            draft,
            span: tracing::Span::current(),
            reply,
        });
        self.queue(conversation, job, written).await
    }

    /// Moves a read mark (without a receipt) with a lane's next batch; returns the read seq
    /// afterwards. See [`marks`].
    pub async fn mark(&self, mark: Mark) -> ApiResult<u64> {
        let (reply, written) = oneshot::channel();
        let conversation = mark.conversation_id;
        self.queue(conversation, Job::Mark(MarkJob { mark, reply }), written)
            .await
    }

    async fn queue<T>(
        &self,
        conversation: i64,
        job: Job,
        written: oneshot::Receiver<ApiResult<T>>,
    ) -> ApiResult<T> {
        let _load = Load::count(&self.in_flight);
        let lane = self.lane_for(conversation);
        let stopped = || ApiError::unavailable("the message writer has stopped");
        // Room first (a caller that gives up while waiting for it leaves no trace), then
        // counted, then queued without a pause: the lane that takes the job subtracts it.
        let room = lane.reserve().await.map_err(|_| stopped())?;
        crate::meters::queued(1.0);
        room.send(job);
        written.await.map_err(|_| stopped())?
    }

    /// This writer spreading jobs over its lanes by conversation whatever the load.
    #[cfg(test)]
    fn spread(self) -> Self {
        Self {
            one_lane_below: 0,
            ..self
        }
    }

    /// Batches written again send by send since the start.
    #[cfg(test)]
    fn fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The first lane under a light load, else the conversation's own lane.
    fn lane_for(&self, conversation: i64) -> &mpsc::Sender<Job> {
        if self.in_flight.load(Ordering::Relaxed) < self.one_lane_below {
            return &self.lanes[0];
        }
        // `lanes` is never empty (at least one is spawned); rem_euclid keeps the index in range
        // for any id.
        let count = i64::try_from(self.lanes.len()).unwrap_or(1);
        let index = usize::try_from(conversation.rem_euclid(count)).unwrap_or(0);
        &self.lanes[index.min(self.lanes.len() - 1)]
    }
}

/// One job counted in a writer's load for as long as its caller waits (however that ends).
struct Load<'a>(&'a AtomicUsize);

impl<'a> Load<'a> {
    fn count(in_flight: &'a AtomicUsize) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        Self(in_flight)
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A pool of exactly one connection to the same SQLite database, with the same options (WAL,
/// busy timeout, foreign keys), kept open for good so its prepared statements stay. An
/// in-memory database is private to its connection, so there the shared pool is used.
fn own_sqlite_connection(db: &DatabaseConnection) -> DatabaseConnection {
    let shared = db.get_sqlite_connection_pool();
    let options = shared.connect_options();
    let file = options.get_filename().to_string_lossy();
    if file == ":memory:" || file.contains("in-memory") {
        return db.clone();
    }
    let pool: sqlx::SqlitePool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with((*options).clone());
    sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
}
