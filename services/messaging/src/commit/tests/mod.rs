//! The writer on both backends: batch order and gapless seqs, retries answered from the unique
//! key, a bad send failing alone, stopping, read marks in the batch, and (PostgreSQL)
//! concurrent lanes.
//!
//! PostgreSQL tests create a database of their own on `ROSETTA_TEST_POSTGRES_URL` (default
//! the local server) and drop it after; they fail, never pass, when it cannot be reached.

mod batches;
mod lanes;
mod marks;

use std::{sync::Arc, time::Duration};

use rosetta_db::entity::messaging::{conversation, message};
use rosetta_db::testing::PgDatabase;
use rosetta_kit::ApiResult;
use rosetta_proto::messaging::v1::{MessageKind, event::Kind};
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, EntityTrait as _,
    TransactionTrait as _,
};
use tokio::sync::oneshot;

use super::*;
use crate::test_support::{group_of, user};
use crate::{
    LocalBus,
    bus::Bus,
    conversations::{self, Target},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database with alice, bob, their conversation and a writer (4 lanes on PostgreSQL).
struct World {
    url: String,
    db: DatabaseConnection,
    events: Arc<Events>,
    writer: Arc<Writer>,
    /// The lanes' task group.
    tasks: Tasks,
    conversations: conversations::Cache,
    conversation: Conversation,
    alice: i64,
    bob: i64,
    /// Where the database lives (a temporary directory or PostgreSQL database), removed when
    /// the test ends.
    _store: Box<dyn std::any::Any + Send + Sync>,
}

const LANES: usize = 4;

async fn world(backend: Backend) -> World {
    world_with(backend, |writer| writer).await
}

/// [`world`] with its writer made by `make` from the default one.
async fn world_with(backend: Backend, make: impl FnOnce(Writer) -> Writer) -> World {
    let (url, store): (String, Box<dyn std::any::Any + Send + Sync>) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
            (url, Box::new(dir))
        }
        Backend::Postgres => {
            let pg = PgDatabase::create().await;
            (pg.url.clone(), Box::new(pg))
        }
    };
    let db = rosetta_db::connect(&url).await.unwrap();
    let (alice, bob) = (user(&db, "alice").await, user(&db, "bob").await);
    let conversations = conversations::Cache::default();
    let conversation = conversations
        .get_or_create(&db, alice, Target::User(bob))
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
    let events = Arc::new(Events::new(db.clone(), bus));
    let tasks = Tasks::new();
    let writer = Arc::new(make(Writer::new(
        &db,
        events.clone(),
        Arc::new(Policy::new(db.clone())),
        LANES,
        crate::config::DEFAULT_GROUP_FANOUT_MAX_MEMBERS,
        &tasks,
    )));
    World {
        url,
        db,
        events,
        writer,
        tasks,
        conversations,
        conversation,
        alice,
        bob,
        _store: store,
    }
}

/// What keeps a lane from writing until released.
enum Held {
    /// This process's SQLite write turn.
    Sqlite(rosetta_db::WriteTransaction),
    /// The conversation's row lock.
    Postgres(DatabaseTransaction),
}

impl Held {
    async fn release(self) {
        match self {
            Self::Sqlite(tx) => tx.commit().await.unwrap(),
            Self::Postgres(tx) => tx.commit().await.unwrap(),
        }
    }
}

type Answer = oneshot::Receiver<ApiResult<Stored>>;

impl World {
    fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => Backend::Sqlite,
            _ => Backend::Postgres,
        }
    }

    /// A text alice → bob with this client key (also its text).
    fn draft(&self, key: &str) -> Draft {
        draft(self.conversation, self.alice, Target::User(self.bob), key)
    }

    /// Blocks the first lane before it writes: on SQLite by holding the write turn, on
    /// PostgreSQL by locking their conversation's row.
    async fn hold(&self) -> Held {
        match self.backend() {
            Backend::Sqlite => Held::Sqlite(rosetta_db::begin_write(&self.db).await.unwrap()),
            Backend::Postgres => {
                let tx = self.db.begin().await.unwrap();
                tx.execute_unprepared(&format!(
                    "SELECT id FROM conversations WHERE id = {} FOR UPDATE",
                    self.conversation.id
                ))
                .await
                .unwrap();
                Held::Postgres(tx)
            }
        }
    }

    /// Queues `draft` for its lane directly; the receiver answers once it is written.
    async fn enqueue(&self, draft: Draft) -> Answer {
        let (reply, written) = oneshot::channel();
        let lane = &self.writer.lanes[0];
        let job = Job::Send(SendJob {
            draft,
            span: tracing::Span::none(),
            reply,
        });
        lane.send(job).await.expect("the lane runs");
        written
    }

    /// Queues a read mark of `user` in alice and bob's conversation for its lane directly.
    async fn enqueue_mark(&self, user: i64, up_to: u64) -> oneshot::Receiver<ApiResult<u64>> {
        let (reply, written) = oneshot::channel();
        let mark = Mark {
            conversation_id: self.conversation.id,
            user,
            up_to,
        };
        let lane = &self.writer.lanes[0];
        let job = Job::Mark(MarkJob { mark, reply });
        lane.send(job).await.expect("the lane runs");
        written
    }

    /// Jobs waiting in the first lane (not yet taken).
    fn queued(&self) -> usize {
        let lane = &self.writer.lanes[0];
        lane.max_capacity() - lane.capacity()
    }

    /// Polls until the lane has taken every queued job (it then waits to write them).
    async fn until_queued(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.queued() != count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lane never reached {count} queued jobs (now {})",
                self.queued()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Writes `drafts` while the lane is held: the first alone, the rest as ONE batch (they
    /// all queue up behind the first). Answers in the same order.
    async fn write_batched(&self, drafts: Vec<Draft>) -> Vec<ApiResult<Stored>> {
        let held = self.hold().await;
        let mut drafts = drafts.into_iter();
        let mut answers = Vec::new();
        if let Some(first) = drafts.next() {
            answers.push(self.enqueue(first).await);
            self.until_queued(0).await;
        }
        for draft in drafts {
            answers.push(self.enqueue(draft).await);
        }
        assert_eq!(
            self.queued(),
            answers.len() - 1,
            "the rest wait as one batch"
        );
        held.release().await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.expect("answered"));
        }
        outcomes
    }

    /// `user`'s log as (seq, message text).
    async fn log(&self, user: i64) -> Vec<(u64, String)> {
        let log = self.events.read_after(user, 0, 10_000).await.unwrap();
        log.into_iter()
            .map(|event| match event.kind {
                Some(Kind::Message(m)) => (event.seq, m.text),
                other => panic!("a message event, not {other:?}"),
            })
            .collect()
    }
}

fn draft(conversation: Conversation, sender: i64, target: Target, key: &str) -> Draft {
    Draft {
        conversation,
        // No policy change ever moved an epoch here: epoch 0 is current.
        admission: Admission {
            sender,
            target,
            epoch: 0,
        },
        req: SendMessageRequest {
            kind: MessageKind::Text as i32,
            text: key.into(),
            client_message_id: key.into(),
            ..Default::default()
        },
        now: rosetta_db::now_ms(),
    }
}

/// `sqlite` and `postgres` test functions running `$body(Backend)`.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    };
}
use both_backends;
