//! Read marks recorded off the push path. A bridge whose protocol counts a pushed message as
//! read queues the push first and records the mark here; a background task moves the marks in
//! batches, one `MarkRead` per conversation with the highest seq recorded for it, so a burst
//! of messages costs one call per conversation instead of one per message, and no push waits
//! for a database write.
//!
//! - **When**: the first mark recorded after a flush opens a window of `every`; the marks
//!   recorded within it are flushed together at its end. An idle session is flushed `every`
//!   after its last push; a busy one once per `every`.
//! - **Bound**: at most [`MAX_PENDING`] conversations wait; a mark that would add one more is
//!   refused by [`MarkRecorder::try_record`], and [`MarkRecorder::record`] flushes first (so a
//!   flood of conversations slows its own session, nothing else).
//! - **End**: [`ReadMarks::finish`] flushes what is left before the session ends (logout,
//!   close, kick), within [`END_DEADLINE`]; dropping the handle lets the task flush in the
//!   background and end.
//! - **Order**: [`ReadMarks::flush`] returns once every mark recorded before it is written,
//!   including a batch the task was writing, so a listing of unread messages made after it
//!   never shows a message already pushed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref},
    messaging::v1::{MarkReadRequest, Message, message},
};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{UserSession, login::END_DEADLINE};

/// Conversations with a mark waiting, at most, per session.
pub const MAX_PENDING: usize = 256;

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

struct Inner {
    session: Arc<UserSession>,
    every: Duration,
    /// The highest seq to mark per conversation.
    pending: Mutex<HashMap<Conversation, u64>>,
    /// Told when a mark is recorded (a permit is kept if the task is busy).
    recorded: Notify,
    /// Held while a batch is written, so that a flush waits for one in flight.
    writing: tokio::sync::Mutex<()>,
    closing: CancellationToken,
}

/// A session's pending read marks and the task that writes them; see the module.
pub struct ReadMarks {
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
}

/// Records marks for a [`ReadMarks`]; cheap to clone, for the task that pushes.
#[derive(Clone)]
pub struct MarkRecorder(Arc<Inner>);

impl ReadMarks {
    /// Starts the background writer of `session`'s marks, flushing every `every`.
    pub fn start(session: Arc<UserSession>, every: Duration) -> Self {
        let inner = Arc::new(Inner {
            session,
            every,
            pending: Mutex::new(HashMap::new()),
            recorded: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
            closing: CancellationToken::new(),
        });
        // In the login's span, so that the marks' calls join its trace.
        let task = tokio::spawn(background(inner.clone()).in_current_span());
        Self {
            inner,
            task: Some(task),
        }
    }

    pub fn recorder(&self) -> MarkRecorder {
        MarkRecorder(self.inner.clone())
    }

    /// Writes every mark recorded so far (and waits for a batch being written).
    pub async fn flush(&self) {
        self.inner.flush().await;
    }

    /// Flushes what is left and stops the task, within [`END_DEADLINE`]: call it before the
    /// session is logged out, while its token still works.
    pub async fn finish(mut self) {
        self.inner.closing.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(END_DEADLINE, &mut task).await.is_err()
        {
            tracing::warn!(
                user = self.inner.session.user_id(),
                "read marks not written within the deadline"
            );
            task.abort();
        }
    }

    /// Stops the task without writing what is left: the session is gone (revoked), so its
    /// calls would be refused anyway.
    pub fn abandon(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for ReadMarks {
    /// A login dropped on another path: the task writes what is left and ends.
    fn drop(&mut self) {
        self.inner.closing.cancel();
    }
}

impl MarkRecorder {
    /// Records that `message` (received) was delivered and so is read, unless
    /// [`MAX_PENDING`] conversations already wait: then false, and nothing is recorded.
    /// Never waits.
    pub fn try_record(&self, message: &Message) -> bool {
        // Seq 0 would mean "the whole conversation" to MarkRead.
        let Some(conversation) = Conversation::of(message).filter(|_| message.seq > 0) else {
            return true;
        };
        {
            let mut pending = self.0.lock();
            if pending.len() >= MAX_PENDING && !pending.contains_key(&conversation) {
                return false;
            }
            let seq = pending.entry(conversation).or_default();
            *seq = (*seq).max(message.seq);
        }
        self.0.recorded.notify_one();
        true
    }

    /// [`Self::try_record`], flushing the pending marks first as often as they are full.
    pub async fn record(&self, message: &Message) {
        while !self.try_record(message) {
            self.0.flush().await;
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Conversation, u64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn flush(&self) {
        let _writing = self.writing.lock().await;
        let batch = std::mem::take(&mut *self.lock());
        for (conversation, up_to_seq) in batch {
            mark(&self.session, conversation.to_ref(), up_to_seq).await;
        }
    }
}

/// Waits for a mark, lets the window fill, writes the batch; on closing, writes what is left.
async fn background(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            biased;
            () = inner.closing.cancelled() => break,
            () = inner.recorded.notified() => {}
        }
        tokio::select! {
            () = tokio::time::sleep(inner.every) => {}
            () = inner.closing.cancelled() => {}
        }
        inner.flush().await;
    }
    inner.flush().await;
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
