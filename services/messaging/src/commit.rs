//! Writing accepted sends: allocate the conversation seq, store the message and fan its event
//! out to every participant's log in one transaction, and wake the streams after the commit.
//!
//! SQLite admits one writer, so concurrent sends queue for it anyway, and each one paid for
//! its own write turn, `BEGIN` and `COMMIT`. On SQLite a single task therefore writes the sends
//! that have queued meanwhile (up to [`MAX_GROUP`]) in ONE transaction: group commit. If any
//! send of a group fails, the group is rolled back and each of its sends is written alone, so
//! a bad send fails only itself. PostgreSQL locks rows and commits sends concurrently: there
//! each send is written in its own transaction by its own caller.

use std::{fmt, sync::Arc};

use rosetta_db::entity::messaging::{conversation, message, read_state};
use rosetta_kit::{ApiError, tasks::Tasks};
use rosetta_proto::messaging::v1::{Event, SendMessageRequest, event::Kind};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait as _, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait as _, QueryFilter as _, SqlErr,
    sea_query::{Expr, ExprTrait as _, OnConflict, Query},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    conversations::{self, Target},
    convert,
    log::Events,
    policy::{Admission, Policy},
};

/// The most sends one group transaction holds.
const MAX_GROUP: usize = 64;
/// Sends waiting for the SQLite writer task.
const QUEUE: usize = 1024;

/// A send that passed validation and policy, ready to be written.
pub struct Draft {
    pub conversation: conversation::Model,
    pub sender: i64,
    pub target: Target,
    pub req: SendMessageRequest,
    pub now: i64,
    /// The policy's answer, confirmed inside the write transaction.
    pub admission: Admission,
}

/// Why a draft was not written.
#[derive(Debug)]
pub enum WriteError {
    /// The policy, checked again inside the write, refused the send (a change committed
    /// since it was admitted).
    Refused(ApiError),
    Db(DbErr),
}

impl WriteError {
    pub fn sql_err(&self) -> Option<SqlErr> {
        match self {
            Self::Db(err) => err.sql_err(),
            Self::Refused(_) => None,
        }
    }
}

impl From<DbErr> for WriteError {
    fn from(err: DbErr) -> Self {
        Self::Db(err)
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(err) => err.fmt(f),
            Self::Db(err) => err.fmt(f),
        }
    }
}

/// Writes drafts: directly on PostgreSQL, through the group-commit task on SQLite.
pub struct Writer {
    db: DatabaseConnection,
    events: Arc<Events>,
    policy: Arc<Policy>,
    queue: Option<mpsc::Sender<Job>>,
}

struct Job {
    draft: Draft,
    span: tracing::Span,
    reply: oneshot::Sender<Result<message::Model, WriteError>>,
}

impl Writer {
    /// On SQLite, spawns the group-commit task into `tasks` (so this runs inside a Tokio
    /// runtime).
    pub fn new(
        db: DatabaseConnection,
        events: Arc<Events>,
        policy: Arc<Policy>,
        tasks: &Tasks,
    ) -> Self {
        let queue = (db.get_database_backend() == DatabaseBackend::Sqlite).then(|| {
            let (queue, jobs) = mpsc::channel(QUEUE);
            let stopping = tasks.stopping().clone();
            let context = (db.clone(), events.clone(), policy.clone());
            tasks.spawn(write_groups(context, jobs, stopping));
            queue
        });
        Self {
            db,
            events,
            policy,
            queue,
        }
    }

    /// Writes `draft` and wakes its recipients; returns the stored message once committed.
    pub async fn write(&self, draft: Draft) -> Result<message::Model, WriteError> {
        let Some(queue) = &self.queue else {
            return write_alone(&self.db, &self.events, &self.policy, &draft).await;
        };
        let (reply, written) = oneshot::channel();
        let job = Job {
            draft,
            span: tracing::Span::current(),
            reply,
        };
        let stopped = || WriteError::Db(DbErr::Custom("the message writer has stopped".into()));
        queue.send(job).await.map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

/// The SQLite writer task: takes every job queued so far and writes them as one group. Once
/// `stopping`, it refuses new jobs but writes those already queued (each was accepted from a
/// caller who waits for its answer), then ends.
async fn write_groups(
    (db, events, policy): (DatabaseConnection, Arc<Events>, Arc<Policy>),
    mut jobs: mpsc::Receiver<Job>,
    stopping: CancellationToken,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        let taken = tokio::select! {
            biased;
            () = stopping.cancelled(), if !jobs.is_closed() => {
                jobs.close();
                continue;
            }
            taken = jobs.recv_many(&mut group, MAX_GROUP) => taken,
        };
        if taken == 0 {
            break;
        }
        if group.len() > 1 {
            match write_group(&db, &policy, &group).await {
                Ok((stored, deliveries)) => {
                    events.wake(deliveries).await;
                    for (job, stored) in group.drain(..).zip(stored) {
                        let _ = job.reply.send(Ok(stored));
                    }
                    continue;
                }
                Err(err) => {
                    tracing::debug!(%err, sends = group.len(), "group write failed; writing each send alone");
                }
            }
        }
        for job in group.drain(..) {
            let written = write_alone(&db, &events, &policy, &job.draft)
                .instrument(job.span.clone())
                .await;
            // The caller may have gone (a cancelled call): the message is stored all the same,
            // and a retry with the same client_message_id finds it.
            let _ = job.reply.send(written);
        }
    }
}

/// Writes one send in its own transaction, then wakes its recipients.
async fn write_alone(
    db: &DatabaseConnection,
    events: &Events,
    policy: &Policy,
    draft: &Draft,
) -> Result<message::Model, WriteError> {
    let tx = rosetta_db::begin_write(db).await?;
    // First thing: a policy change committed since the send was admitted refuses it here.
    policy
        .confirm_one(&*tx, &draft.admission)
        .await?
        .map_err(WriteError::Refused)?;
    let (stored, deliveries) = write_in(&tx, draft).await?;
    tx.commit().await?;
    events.wake(deliveries).await;
    Ok(stored)
}

/// Writes every job's draft in one transaction, all or nothing, with the fan-out of all of
/// them in one pass over the event log.
async fn write_group(
    db: &DatabaseConnection,
    policy: &Policy,
    group: &[Job],
) -> Result<(Vec<message::Model>, Vec<(i64, Event)>), DbErr> {
    let tx = rosetta_db::begin_write(db).await?;
    // First thing, for all of them: a refused send fails the group, and writing each alone
    // then refuses just that one.
    let admissions: Vec<Admission> = group.iter().map(|job| job.draft.admission).collect();
    if policy
        .confirm(&*tx, &admissions)
        .await?
        .iter()
        .any(Result::is_err)
    {
        return Err(DbErr::Custom("a send of the group was refused".into()));
    }
    let mut stored = Vec::with_capacity(group.len());
    let mut fan_out = Vec::with_capacity(group.len());
    for job in group {
        let message = store(&tx, &job.draft).await?;
        let recipients = recipients(&tx, &job.draft).await?;
        fan_out.push((recipients, Kind::Message(convert::message(&message))));
        stored.push(message);
    }
    let events: Vec<(&[i64], &Kind)> = fan_out
        .iter()
        .map(|(recipients, kind)| (recipients.as_slice(), kind))
        .collect();
    let deliveries = Events::append_all(&*tx, &events, group[0].draft.now).await?;
    tx.commit().await?;
    Ok((stored, deliveries))
}

/// Stores one message and its events inside `tx`; returns them for waking after the commit.
async fn write_in(
    tx: &DatabaseTransaction,
    draft: &Draft,
) -> Result<(message::Model, Vec<(i64, Event)>), DbErr> {
    let stored = store(tx, draft).await?;
    let recipients = recipients(tx, draft).await?;
    let event = Kind::Message(convert::message(&stored));
    let deliveries = Events::append(tx, &recipients, &event, draft.now).await?;
    Ok((stored, deliveries))
}

async fn recipients(tx: &DatabaseTransaction, draft: &Draft) -> Result<Vec<i64>, DbErr> {
    conversations::participants(tx, &draft.conversation)
        .await
        .map_err(|err| DbErr::Custom(err.to_string()))
}

/// Allocates the next seq (the UPDATE takes the conversation's row lock, or SQLite's write
/// lock, until commit: concurrent senders queue here, so seqs have no gaps), stores the
/// message and moves the sender's read mark past it.
async fn store(tx: &DatabaseTransaction, draft: &Draft) -> Result<message::Model, DbErr> {
    let Draft {
        conversation,
        sender,
        target,
        req,
        now,
        admission: _,
    } = draft;
    let bump = Query::update()
        .table(conversation::Entity)
        .value(
            conversation::Column::LastSeq,
            Expr::col(conversation::Column::LastSeq).add(1),
        )
        .value(conversation::Column::LastAtMs, *now)
        .and_where(Expr::col(conversation::Column::Id).eq(conversation.id))
        .returning(Query::returning().columns([conversation::Column::LastSeq]))
        .to_owned();
    let seq: i64 = tx
        .query_one(&bump)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?
        .try_get("", "last_seq")?;
    let (to_user_id, to_group_id) = match *target {
        Target::User(user) => (Some(user), None),
        Target::Group(group) => (None, Some(group)),
    };
    let stored = message::Entity::insert(message::ActiveModel {
        conversation_id: Set(conversation.id),
        seq: Set(seq),
        sender_id: Set(*sender),
        to_user_id: Set(to_user_id),
        to_group_id: Set(to_group_id),
        kind: Set(i16::try_from(req.kind).unwrap_or_default()),
        text: Set(req.text.clone()),
        file_id: Set(req.file_id.clone()),
        reply_to_id: Set(req.reply_to_id),
        client_message_id: Set(req.client_message_id.clone()),
        client_time: Set(req.client_time.clone()),
        sent_at_ms: Set(*now),
        recalled: Set(false),
        ..Default::default()
    })
    .exec_with_returning(tx)
    .await?;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastMessageId, Expr::value(stored.id))
        .filter(conversation::Column::Id.eq(conversation.id))
        .exec(tx)
        .await?;
    // The new seq is the conversation's highest (read and clear marks never pass `last_seq`),
    // so setting the sender's read mark to it can only move the mark forward.
    read_state::Entity::insert(read_state::ActiveModel {
        conversation_id: Set(conversation.id),
        user_id: Set(*sender),
        last_read_seq: Set(seq),
        cleared_seq: Set(0),
    })
    .on_conflict(
        OnConflict::columns([
            read_state::Column::ConversationId,
            read_state::Column::UserId,
        ])
        .update_column(read_state::Column::LastReadSeq)
        .to_owned(),
    )
    .exec_without_returning(tx)
    .await?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rosetta_db::entity::user;
    use rosetta_proto::messaging::v1::MessageKind;
    use sea_orm::SqlErr;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::{LocalBus, bus::Bus};

    /// A SQLite database with alice, bob, their conversation and a writer for it.
    struct World {
        _dir: tempfile::TempDir,
        db: DatabaseConnection,
        events: Arc<Events>,
        writer: Arc<Writer>,
        /// The writer task's group.
        tasks: Tasks,
        conversation: conversation::Model,
        alice: i64,
        bob: i64,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
        let db = rosetta_db::connect(&url).await.unwrap();
        let (alice, bob) = (user(&db, "alice").await, user(&db, "bob").await);
        let conversation = conversations::find_or_create(&db, alice, Target::User(bob))
            .await
            .unwrap();
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
        let events = Arc::new(Events::new(db.clone(), bus));
        let tasks = Tasks::new();
        let policy = Arc::new(Policy::new(db.clone()));
        let writer = Arc::new(Writer::new(db.clone(), events.clone(), policy, &tasks));
        World {
            _dir: dir,
            db,
            events,
            writer,
            tasks,
            conversation,
            alice,
            bob,
        }
    }

    async fn user(db: &DatabaseConnection, name: &str) -> i64 {
        user::Entity::insert(user::ActiveModel {
            username: Set(name.into()),
            ocid: Set(format!("oc-{name}")),
            nickname: Set(name.into()),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            created_at_ms: Set(rosetta_db::now_ms()),
            ..Default::default()
        })
        .exec_with_returning(db)
        .await
        .unwrap()
        .id
    }

    impl World {
        /// A text alice → bob with this client key.
        fn draft(&self, key: &str) -> Draft {
            Draft {
                conversation: self.conversation.clone(),
                sender: self.alice,
                target: Target::User(self.bob),
                req: SendMessageRequest {
                    kind: MessageKind::Text as i32,
                    text: key.into(),
                    client_message_id: key.into(),
                    ..Default::default()
                },
                now: rosetta_db::now_ms(),
                // Never confirmed by a policy change: no epoch row, epoch 0.
                admission: Admission {
                    sender: self.alice,
                    target: Target::User(self.bob),
                    epoch: 0,
                },
            }
        }

        /// Queues a send for the writer task directly; the receiver answers when written.
        async fn enqueue(
            &self,
            key: &str,
        ) -> oneshot::Receiver<Result<message::Model, WriteError>> {
            let (reply, written) = oneshot::channel();
            let job = Job {
                draft: self.draft(key),
                span: tracing::Span::none(),
                reply,
            };
            let queue = self.writer.queue.as_ref().expect("the SQLite writer");
            queue.send(job).await.expect("the writer runs");
            written
        }

        /// Jobs waiting in the writer's queue (not yet taken by the task).
        fn queued(&self) -> usize {
            let queue = self.writer.queue.as_ref().expect("the SQLite writer");
            queue.max_capacity() - queue.capacity()
        }

        /// Sends alice → bob with these client keys while SQLite's write turn is held, so
        /// that they queue up behind it and (but for the first) are written as one group.
        async fn send_queued(
            &self,
            keys: &[&str],
        ) -> Vec<JoinHandle<Result<message::Model, WriteError>>> {
            let held = rosetta_db::begin_write(&self.db).await.unwrap();
            let sends = keys
                .iter()
                .map(|key| {
                    let writer = self.writer.clone();
                    let draft = self.draft(key);
                    tokio::spawn(async move { writer.write(draft).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
            sends
        }
    }

    /// A group's sends get consecutive conversation seqs, and each participant's log gets
    /// one event per message, in the same order, with consecutive log seqs.
    #[tokio::test]
    async fn a_group_of_sends_fans_out_in_order() {
        let world = world().await;
        let keys = ["a", "b", "c", "d", "e", "f"];
        let mut seqs = Vec::new();
        for send in world.send_queued(&keys).await {
            seqs.push(send.await.unwrap().unwrap().seq);
        }
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "seqs in queue order");
        for user in [world.alice, world.bob] {
            let log = world.events.read_after(user, 0, 100).await.unwrap();
            let seen: Vec<(u64, String)> = log
                .into_iter()
                .map(|event| match event.kind {
                    Some(Kind::Message(m)) => (event.seq, m.text),
                    other => panic!("a message event, not {other:?}"),
                })
                .collect();
            let expected: Vec<(u64, String)> =
                (1..).zip(keys.iter().map(|k| (*k).to_string())).collect();
            assert_eq!(seen, expected, "log of user {user}");
        }
    }

    /// A duplicate `client_message_id` inside a group fails that send only, and the seqs
    /// stay gapless.
    #[tokio::test]
    async fn a_bad_send_in_a_group_fails_alone() {
        let world = world().await;
        let mut seqs = Vec::new();
        let mut duplicates = 0;
        for send in world.send_queued(&["a", "b", "c", "b", "d", "e"]).await {
            match send.await.unwrap() {
                Ok(stored) => seqs.push(stored.seq),
                Err(err) => {
                    assert!(
                        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
                        "{err}"
                    );
                    duplicates += 1;
                }
            }
        }
        assert_eq!(duplicates, 1, "only the repeated key fails");
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2, 3, 4, 5], "no gap left by the failed send");
        assert_eq!(
            world.events.head(world.bob).await.unwrap(),
            5,
            "one event per stored message"
        );
    }

    /// Stopped while sends wait behind SQLite's write turn, the writer still writes every
    /// send it had accepted, refuses later ones, and its task ends.
    #[tokio::test]
    async fn stopping_writes_the_queued_sends_then_ends() {
        let world = world().await;
        let held = rosetta_db::begin_write(&world.db).await.unwrap();
        let first = world.enqueue("a").await;
        // Taken by the task, which now waits for the write turn: later jobs stay queued.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while world.queued() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer never took the job"
            );
            tokio::task::yield_now().await;
        }
        let queued = [world.enqueue("b").await, world.enqueue("c").await];
        assert_eq!(world.queued(), 2);
        let stopping = {
            let tasks = world.tasks.clone();
            tokio::spawn(async move { tasks.stop("writer", Duration::from_secs(30)).await })
        };
        drop(held);
        for written in std::iter::once(first).chain(queued) {
            let stored = written.await.expect("answered").expect("written");
            assert!(stored.seq > 0);
        }
        assert_eq!(stopping.await.unwrap(), 0, "the writer task ended");
        let late = world.writer.write(world.draft("late")).await;
        assert!(late.is_err(), "a send after the stop is refused");
        assert_eq!(world.events.head(world.bob).await.unwrap(), 3);
    }
}
