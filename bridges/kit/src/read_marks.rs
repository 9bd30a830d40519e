//! Read marks recorded off the push path. A bridge whose protocol counts a pushed message as
//! read queues the push first and records the mark here; one batcher per bridge moves the marks
//! of all its logins in batches, one `MarkRead` per conversation with the highest seq recorded
//! for it, so a burst of messages costs one call per conversation instead of one per message,
//! and no push waits for a database write.
//!
//! A login's share at rest is a [`LoginMarks`] handle of a few words: its pending marks take
//! an entry in the batcher only while some wait, and no login has a task of its own. The
//! batcher's one task runs while marks wait anywhere, writes at most [`CONCURRENT_WRITES`]
//! logins' batches at once, and ends when nothing is left.
//!
//! - **When**: a login's first mark recorded after a flush opens a window of `every`; its marks
//!   recorded within it are flushed together at its end. An idle login is flushed `every`
//!   after its last push; a busy one once per `every`.
//! - **Bound**: at most [`MAX_PENDING`] conversations wait per login; a mark that would add one
//!   more is refused by [`LoginMarks::try_record`], and [`LoginMarks::record`] flushes first
//!   (so a flood of conversations slows its own login, nothing else).
//! - **End**: [`LoginMarks::finish`] flushes what is left before the session ends (logout,
//!   close, kick), within [`END_DEADLINE`]; dropping the handle leaves its marks to the
//!   batcher, which writes them when their window closes.
//! - **Order**: [`LoginMarks::flush`] returns once every mark of the login recorded before it is
//!   written, including a batch the batcher was writing, so a listing of unread messages made
//!   after it never shows a message already pushed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref},
    messaging::v1::{MarkReadRequest, Message, message},
};
use tokio::{sync::Notify, task::JoinSet, time::Instant};
use tracing::Instrument as _;

use crate::{UserSession, login::END_DEADLINE};

/// Conversations with a mark waiting, at most, per login.
pub const MAX_PENDING: usize = 256;
/// Logins whose batches the batcher writes at once: a burst across many logins is written in
/// parallel, but never as one call per login all at once.
pub const CONCURRENT_WRITES: usize = 16;

/// A conversation as a map key, from the recipient's side.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Conversation {
    User(i64),
    Group(i64),
}

impl Conversation {
    fn of(message: &Message) -> Option<Self> {
        match message.to? {
            message::To::ToGroupId(group) => Some(Self::Group(group)),
            message::To::ToUserId(_) => Some(Self::User(message.sender_id)),
        }
    }

    fn to_ref(self) -> ConversationRef {
        let r#ref = match self {
            Self::User(user) => conversation_ref::Ref::UserId(user),
            Self::Group(group) => conversation_ref::Ref::GroupId(group),
        };
        ConversationRef { r#ref: Some(r#ref) }
    }
}

type Batch = HashMap<Conversation, u64>;
/// A login's batch taken for writing: its key, its session and the marks.
type Taken = (u64, Arc<UserSession>, Batch);

/// The batcher of one bridge: the pending marks of its logins and the task that writes them;
/// see the module. Cheap to clone: clones share the batcher.
#[derive(Clone)]
pub struct ReadMarks {
    inner: Arc<Inner>,
}

struct Inner {
    every: Duration,
    state: Mutex<State>,
    /// Wakes the task: a window opened, or a batch written by a flush left marks behind.
    wake: Notify,
    /// Told whenever a batch has been written, for flushes waiting on one in flight.
    written: Notify,
}

#[derive(Default)]
struct State {
    /// Logins with marks waiting or a batch being written; no entry otherwise.
    logins: HashMap<u64, Pending>,
    next_key: u64,
    /// The task runs.
    driving: bool,
}

struct Pending {
    session: Arc<UserSession>,
    /// The highest seq to mark per conversation.
    marks: Batch,
    /// When the window opened by the first of `marks` closes.
    due: Instant,
    /// A batch of the login is being written (by the task or a flush).
    writing: bool,
}

/// One login's read marks, recorded into its bridge's [`ReadMarks`].
pub struct LoginMarks {
    marks: ReadMarks,
    key: u64,
    session: Arc<UserSession>,
}

impl ReadMarks {
    /// A batcher writing each login's marks `every` after its window opens.
    pub fn new(every: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                every,
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                written: Notify::new(),
            }),
        }
    }

    /// The marks of a new login of `session`.
    pub fn login(&self, session: Arc<UserSession>) -> LoginMarks {
        let key = {
            let mut state = self.inner.lock();
            state.next_key += 1;
            state.next_key
        };
        LoginMarks {
            marks: self.clone(),
            key,
            session,
        }
    }

    /// Logins with marks waiting or being written now.
    pub fn pending_logins(&self) -> usize {
        self.inner.lock().logins.len()
    }
}

impl LoginMarks {
    /// Records that `message` (received) was delivered and so is read, unless
    /// [`MAX_PENDING`] conversations of this login already wait: then false, and nothing is
    /// recorded. Never waits.
    pub fn try_record(&self, message: &Message) -> bool {
        // Seq 0 would mean "the whole conversation" to MarkRead.
        let Some(conversation) = Conversation::of(message).filter(|_| message.seq > 0) else {
            return true;
        };
        let inner = &self.marks.inner;
        let mut state = inner.lock();
        let pending = state.logins.entry(self.key).or_insert_with(|| Pending {
            session: self.session.clone(),
            marks: Batch::new(),
            due: Instant::now(),
            writing: false,
        });
        if pending.marks.len() >= MAX_PENDING && !pending.marks.contains_key(&conversation) {
            return false;
        }
        let opens_window = pending.marks.is_empty();
        if opens_window {
            pending.due = Instant::now() + inner.every;
        }
        let seq = pending.marks.entry(conversation).or_default();
        *seq = (*seq).max(message.seq);
        if opens_window {
            inner.drive(&mut state);
        }
        true
    }

    /// [`Self::try_record`], flushing the login's pending marks first as often as they are full.
    pub async fn record(&self, message: &Message) {
        while !self.try_record(message) {
            self.flush().await;
        }
    }

    /// Writes every mark of this login recorded so far (waiting for a batch being written).
    pub async fn flush(&self) {
        let inner = &self.marks.inner;
        loop {
            // Made before the state is read, so a batch written in between still wakes it.
            let written = inner.written.notified();
            let batch = {
                let mut state = inner.lock();
                match state.logins.get_mut(&self.key) {
                    None => return,
                    Some(pending) if pending.writing => None,
                    Some(pending) => {
                        pending.writing = true;
                        Some(std::mem::take(&mut pending.marks))
                    }
                }
            };
            match batch {
                Some(batch) => {
                    let _writing = Writing {
                        inner: inner.clone(),
                        key: self.key,
                    };
                    write(&self.session, batch).await;
                    return;
                }
                None => written.await,
            }
        }
    }

    /// Flushes what is left, within [`END_DEADLINE`]: call it before the session is logged
    /// out, while its token still works. Marks not written by then are dropped.
    pub async fn finish(self) {
        if tokio::time::timeout(END_DEADLINE, self.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                user = self.session.user_id(),
                "read marks not written within the deadline"
            );
        }
        self.forget();
    }

    /// Drops the login's waiting marks unwritten: the session is gone (revoked), so their
    /// calls would be refused anyway.
    pub fn abandon(self) {
        self.forget();
    }

    fn forget(&self) {
        let mut state = self.marks.inner.lock();
        if let Some(pending) = state.logins.get_mut(&self.key) {
            pending.marks.clear();
            if !pending.writing {
                state.logins.remove(&self.key);
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the task, starting it if none runs.
    fn drive(self: &Arc<Self>, state: &mut State) {
        if state.driving {
            self.wake.notify_one();
        } else {
            state.driving = true;
            tokio::spawn(run(self.clone()));
        }
    }

    /// The batches whose window has closed, marked as being written (as many as `room`), and
    /// when the next window closes; `None` once nothing waits (the task then ends).
    fn due(&self, room: usize, now: Instant) -> Option<(Vec<Taken>, Option<Instant>)> {
        let mut state = self.lock();
        if state.logins.is_empty() && room == CONCURRENT_WRITES {
            state.driving = false;
            return None;
        }
        let (mut due, mut next) = (Vec::new(), None::<Instant>);
        for (key, pending) in &mut state.logins {
            if pending.writing || pending.marks.is_empty() {
                continue;
            }
            if due.len() == room {
                // No room: the task waits for a write to end, not for a window.
                next = None;
                break;
            }
            if pending.due <= now {
                pending.writing = true;
                due.push((
                    *key,
                    pending.session.clone(),
                    std::mem::take(&mut pending.marks),
                ));
            } else {
                next = Some(next.map_or(pending.due, |next| next.min(pending.due)));
            }
        }
        Some((due, next))
    }
}

/// Ends a batch's write: the login's entry goes once nothing of it waits, and flushes waiting
/// for the batch (and the task, for marks recorded meanwhile) are told. Also on a write that
/// was cancelled (a flush past its deadline).
struct Writing {
    inner: Arc<Inner>,
    key: u64,
}

impl Drop for Writing {
    fn drop(&mut self) {
        {
            let mut state = self.inner.lock();
            if let Some(pending) = state.logins.get_mut(&self.key) {
                pending.writing = false;
                if pending.marks.is_empty() {
                    state.logins.remove(&self.key);
                }
            }
        }
        self.inner.written.notify_waiters();
        self.inner.wake.notify_one();
    }
}

/// The batcher's task: writes each login's batch when its window closes, up to
/// [`CONCURRENT_WRITES`] at once; ends when no marks wait and no write is under way.
async fn run(inner: Arc<Inner>) {
    let mut writes = JoinSet::new();
    loop {
        let room = CONCURRENT_WRITES - writes.len();
        let Some((due, next)) = inner.due(room, Instant::now()) else {
            return;
        };
        for (key, session, batch) in due {
            let writing = Writing {
                inner: inner.clone(),
                key,
            };
            let span = tracing::info_span!("read_marks", user = session.user_id());
            writes.spawn(
                async move {
                    write(&session, batch).await;
                    drop(writing);
                }
                .instrument(span),
            );
        }
        tokio::select! {
            Some(done) = writes.join_next(), if !writes.is_empty() => {
                if let Err(err) = done {
                    tracing::warn!(%err, "a read-mark write failed");
                }
            }
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {}
            () = inner.wake.notified() => {}
        }
    }
}

/// Writes one login's batch, one call per conversation.
async fn write(session: &UserSession, batch: Batch) {
    for (conversation, up_to_seq) in batch {
        mark(session, conversation.to_ref(), up_to_seq).await;
    }
}

/// Moves the user's read mark in `conversation` up to `up_to_seq`. A concurrent write to the
/// same read state can make one attempt fail: it is retried once; a failure is logged and the
/// messages stay unread.
pub(crate) async fn mark(session: &UserSession, conversation: ConversationRef, up_to_seq: u64) {
    for attempt in 0..2 {
        let marked = async {
            let request = session
                .request(MarkReadRequest {
                    conversation: Some(conversation),
                    up_to_seq,
                    // The bridges that mark what they deliver serve clients without read
                    // state: the sender is not told the message was read.
                    no_receipt: true,
                })
                .await?;
            session.backend().messaging().mark_read(request).await
        }
        .await;
        match marked {
            Ok(_) => return,
            Err(status) => tracing::warn!(%status, attempt, "marking read failed"),
        }
    }
}
