//! Subscribe: replay what the caller missed, then `CaughtUp`, then live events, with no gap
//! and no duplicate.
//!
//! The stream registers with the bus BEFORE it reads the log (and the bus returns only once it
//! carries the user's events here), so an event committed while the backlog is being read is
//! either in the backlog or in the stream's queue (or both). Durable events are forwarded only
//! when their seq is exactly the next one: older ones are duplicates and dropped; a jump means
//! a wake-up was lost or overtaken, and the log is re-read from the last seq sent. The log is
//! also re-read when the queue overflowed or the bus may have lost wake-ups
//! ([`Wake::Reread`]); it is never polled.
//!
//! After `CaughtUp` the stream sends the operator announcements the user has not had yet, and
//! those the bus broadcasts while it is open ([`announce`]).
//!
//! Large groups' messages are not in the log: the stream follows each of the user's large
//! groups by conversation seq ([`groups`]), resuming from the cursors of a [`Resume`].
//!
//! The stream watches its session through the process's one session watch (no timer and no
//! query per stream): when the watch fires, one check through the session cache confirms it,
//! and a stream whose session was revoked (logout, a password change elsewhere, a recovery)
//! ends with `SESSION_REVOKED` instead of delivering a stolen session's events forever.

use std::{collections::HashMap, sync::Arc};

use rosetta_auth::{SessionGuard, WatchHandle};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    messaging::v1::{
        CaughtUp, ConversationCursor, Event, SubscribeRequest, SubscribeResponse, event,
        subscribe_response::Item,
    },
    social::v1::PresenceStatus,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Messaging,
    bus::{Subscription, Wake},
};

mod announce;
mod groups;
mod outbox;

use self::groups::Tracks;
use announce::Announced;
pub(crate) use announce::LiveCursors;
pub use outbox::{Gone, Inbox, Outbox, Outgoing, outbox};

/// Events read from the log per query while catching up.
const REPLAY_BATCH: u64 = 500;

/// Where a stream resumes: the user's log position and, for large groups, one cursor per
/// conversation (`SubscribeRequest` documents both). The one representation of a stream's
/// starting point, whatever request carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// After this log seq; `None`: from now on.
    pub after_seq: Option<u64>,
    /// Conversation id → newest message seq the client holds.
    pub cursors: HashMap<i64, u64>,
}

impl Resume {
    /// The most conversation cursors one request may carry.
    pub const MAX_CURSORS: usize = 4096;

    /// Read from a Subscribe request; TOO_LARGE past [`Resume::MAX_CURSORS`] cursors.
    pub fn from_request(req: &SubscribeRequest) -> ApiResult<Self> {
        Self::from_parts(req.after_seq, &req.conversation_cursors)
    }

    /// From a log position and conversation cursors (a Subscribe request's, or a
    /// BridgeEvents feed's); TOO_LARGE past [`Resume::MAX_CURSORS`] cursors.
    pub fn from_parts(after_seq: Option<u64>, cursors: &[ConversationCursor]) -> ApiResult<Self> {
        if cursors.len() > Self::MAX_CURSORS {
            return Err(ApiError::invalid(
                Reason::TooLarge,
                "at most 4096 conversation cursors",
            ));
        }
        Ok(Self {
            after_seq,
            cursors: cursors.iter().map(|c| (c.conversation_id, c.seq)).collect(),
        })
    }
}

/// The session a stream was opened with, and its hold on the process's session watch.
pub struct SessionCheck {
    guard: Arc<SessionGuard>,
    watch: WatchHandle,
}

impl SessionCheck {
    /// Starts watching `session_id` (the caller has checked that it is live).
    pub fn new(guard: Arc<SessionGuard>, session_id: &str) -> Self {
        let watch = guard.watch(session_id);
        Self { guard, watch }
    }

    /// Completes when the watch says the session may have ended.
    async fn fired(check: Option<&Self>) {
        match check {
            Some(check) => check.watch.ended().await,
            None => std::future::pending().await,
        }
    }

    /// After the watch fired: `SESSION_REVOKED` if the session has ended, else watches anew.
    async fn confirm(&mut self) -> ApiResult<()> {
        let id = self.watch.session_id().to_owned();
        if self.guard.is_live(&id).await? {
            self.watch = self.guard.watch(&id);
            Ok(())
        } else {
            Err(ApiError::unauthenticated(
                Reason::SessionRevoked,
                "session has ended",
            ))
        }
    }
}

impl Messaging {
    /// Serves one stream of `me` into `out` until the client goes away, with `session` until
    /// that session ends, or until `stopping` (the server shuts down: the stream ends with
    /// `UNAVAILABLE`, and the client resumes elsewhere or later from its last seq).
    pub async fn subscribe(
        self: Arc<Self>,
        me: i64,
        resume: Resume,
        out: Outbox,
        session: Option<SessionCheck>,
        stopping: CancellationToken,
    ) {
        let mut session = session;
        // Every step but the idle wait is boxed: a task's future is as large as its largest
        // state, and thousands of streams sit idle in the loop of `serve` for hours, so the
        // states of catching up, replaying and forwarding are allocated only while they run.
        let result = match Box::pin(self.bus.subscribe(me)).await {
            Ok(mut live) => {
                if let Err(err) = Box::pin(self.presences.touch(me, None)).await {
                    tracing::warn!(%err, me, "presence update on subscribe failed");
                }
                let result = self
                    .serve(me, resume, &mut live, &out, session.as_mut(), &stopping)
                    .await;
                // Leave the hub before a sign-out asks whether the user still streams here.
                drop(live);
                result
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            let revoked = err.reason == Reason::SessionRevoked;
            let _ = out.send(Err(err.into())).await;
            if revoked {
                Box::pin(self.sign_out_revoked(me)).await;
            }
        }
    }

    /// The backlog after the resume point (or nothing, from the head), `CaughtUp`, then what
    /// the bus wakes the stream for.
    async fn serve(
        &self,
        me: i64,
        resume: Resume,
        live: &mut Subscription,
        out: &Outbox,
        mut session: Option<&mut SessionCheck>,
        stopping: &CancellationToken,
    ) -> ApiResult<()> {
        // Linked before anything is read, like the user's own subscription.
        let mut tracks = Box::pin(self.follow_large_groups(me, &resume, live)).await?;
        let mut last = match resume.after_seq {
            Some(after) => Box::pin(self.replay(me, after, &mut tracks, live, out)).await?,
            None => Box::pin(self.events.head(me)).await?,
        };
        Box::pin(self.catch_up_all(me, &mut tracks, out)).await?;
        let caught_up = CaughtUp {
            head_seq: last,
            conversation_cursors: tracks.cursors(),
        };
        if !Box::pin(send(out, Item::CaughtUp(caught_up))).await {
            return Ok(());
        }
        let mut announced = Announced::default();
        if !Box::pin(self.send_pending(me, out, &mut announced)).await? {
            return Ok(());
        }
        loop {
            let wake = tokio::select! {
                wake = live.recv() => Some(wake),
                () = SessionCheck::fired(session.as_deref()) => None,
                () = out.closed() => return Ok(()),
                () = stopping.cancelled() => return Err(shutting_down()),
            };
            let Some(wake) = wake else {
                if let Some(session) = session.as_deref_mut() {
                    Box::pin(session.confirm()).await?;
                }
                continue;
            };
            let open = match wake {
                Wake::Event(event) => match &event.kind {
                    Some(event::Kind::Announcement(announcement)) => {
                        Box::pin(self.send_live(me, announcement, out, &mut announced)).await?
                    }
                    _ if groups::is_group_message(&event) => {
                        Box::pin(self.on_group_message(me, &event, &mut tracks, out)).await?;
                        true
                    }
                    _ => {
                        let step = self.on_log_event(me, &event, &mut last, &mut tracks, live, out);
                        Box::pin(step).await?
                    }
                },
                Wake::Reread => {
                    last = Box::pin(self.replay(me, last, &mut tracks, live, out)).await?;
                    Box::pin(self.catch_up_all(me, &mut tracks, out)).await?;
                    // A broadcast may have been lost with the other wake-ups.
                    Box::pin(self.send_pending(me, out, &mut announced)).await?
                }
            };
            if !open {
                return Ok(());
            }
        }
    }

    /// A live event of the user's own log (or a live-only one, seq 0): sent when it is the
    /// next seq, after a re-read of what a jump skipped. False when the client has gone.
    async fn on_log_event(
        &self,
        me: i64,
        event: &Event,
        last: &mut u64,
        tracks: &mut Tracks,
        live: &Subscription,
        out: &Outbox,
    ) -> ApiResult<bool> {
        if event.seq > *last + 1 {
            *last = self.replay(me, *last, tracks, live, out).await?;
        }
        if event.seq == 0 {
            return Ok(send(out, Item::Event(event.clone())).await);
        }
        if event.seq == *last + 1 {
            if !self.forward(me, event.clone(), tracks, live, out).await? {
                return Ok(false);
            }
            *last += 1;
        }
        Ok(true)
    }

    /// A revoked session cannot sign its user out any more (its token no longer works), so
    /// the bridge that held it cannot either: when its stream was the user's last one here,
    /// the user is shown OFFLINE now rather than when their presence times out.
    async fn sign_out_revoked(&self, me: i64) {
        if self.bus.hub().is_live(me) {
            return;
        }
        if let Err(err) = self.presences.set_status(me, PresenceStatus::Offline).await {
            tracing::warn!(%err, me, "sign-out after a revoked session failed");
        }
    }

    /// Sends every stored event after `last`; returns the new last seq sent.
    async fn replay(
        &self,
        me: i64,
        mut last: u64,
        tracks: &mut Tracks,
        live: &Subscription,
        out: &Outbox,
    ) -> ApiResult<u64> {
        loop {
            let batch = self.events.read_after(me, last, REPLAY_BATCH).await?;
            let full = batch.len() as u64 == REPLAY_BATCH;
            for event in batch {
                let seq = event.seq;
                if !self.forward(me, event, tracks, live, out).await? {
                    return Ok(last);
                }
                last = seq;
            }
            if !full {
                return Ok(last);
            }
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::unavailable("the server is shutting down")
}

async fn send(out: &Outbox, item: Item) -> bool {
    let message = matches!(
        &item,
        Item::Event(Event {
            kind: Some(event::Kind::Message(_)),
            ..
        })
    );
    let sent = out
        .send(Ok(SubscribeResponse { item: Some(item) }))
        .await
        .is_ok();
    if sent && message {
        crate::meters::message_delivered();
    }
    sent
}

#[cfg(test)]
mod tests;
