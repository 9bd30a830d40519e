//! The event stream of one login over a `Subscribe` of its own: what a bridge uses when the
//! messaging service does not serve `BridgeEvents` to it (no bridge key on either side). Opened
//! once at login, reopened after a break from the newest event seen (so nothing sent meanwhile
//! is lost), with a growing pause between attempts, and over for good when the session is
//! revoked. [`Direct::next`] is cancel-safe.

use std::{sync::Arc, time::Duration};

use rosetta_proto::messaging::v1::{Event, SubscribeResponse, subscribe_response::Item};
use tokio::time::Instant;
use tonic::{Code, Status, Streaming};

use crate::{UserSession, resume::Resume};

/// The first pause before reopening a broken stream; it doubles up to [`MAX_PAUSE`].
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(250);
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(15);

/// The user's events, one at a time, for as long as their session lives.
pub struct Direct {
    session: Arc<UserSession>,
    state: State,
    /// Where a reopened stream resumes: after the newest seq of the user's log seen here and
    /// the newest message seen in each large group. Nothing until the first catch-up marker
    /// (the stream then replays nothing).
    resume: Resume,
    /// The pause before the next reopening, doubled at each failure in a row.
    pause: Duration,
}

enum State {
    Open(Box<Streaming<SubscribeResponse>>),
    /// Broken: reopen at this instant.
    Broken {
        retry_at: Instant,
    },
    /// The session was revoked: no more events.
    Revoked,
}

impl Direct {
    /// Subscribes and waits until the stream is live (its catch-up marker arrived), so the
    /// user counts as online before the login is answered; after `patience` the stream is
    /// kept all the same and comes up by itself.
    pub async fn open(
        session: Arc<UserSession>,
        mut resume: Resume,
        patience: Duration,
    ) -> Result<Self, Status> {
        let mut stream = subscribe(&session, &resume).await?;
        match tokio::time::timeout(patience, stream.message()).await {
            Ok(Ok(Some(SubscribeResponse {
                item: Some(Item::CaughtUp(caught_up)),
            }))) => resume.caught_up(&caught_up),
            Ok(Ok(Some(_))) | Err(_) => {}
            Ok(Ok(None)) => return Err(Status::unavailable("event stream ended at once")),
            Ok(Err(status)) => return Err(status),
        }
        Ok(Self {
            session,
            state: State::Open(Box::new(stream)),
            resume,
            pause: FIRST_PAUSE,
        })
    }

    /// The next event; `None` once the session is revoked (logged out elsewhere, password
    /// changed, account deleted): the bridge then ends the login. Breaks are mended here.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            match &mut self.state {
                State::Revoked => return None,
                State::Broken { retry_at } => {
                    tokio::time::sleep_until(*retry_at).await;
                    match subscribe(&self.session, &self.resume).await {
                        Ok(stream) => self.state = State::Open(Box::new(stream)),
                        Err(status) => self.broke(&status),
                    }
                }
                State::Open(stream) => match stream.message().await {
                    Ok(Some(SubscribeResponse { item: Some(item) })) => {
                        self.pause = FIRST_PAUSE;
                        match item {
                            Item::CaughtUp(caught_up) => self.resume.caught_up(&caught_up),
                            Item::Event(event) => {
                                self.resume.seen(&event);
                                return Some(event);
                            }
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => self.broke(&Status::unavailable("event stream ended")),
                    Err(status) => self.broke(&status),
                },
            }
        }
    }

    /// Whether the session behind the stream was found revoked.
    pub fn revoked(&self) -> bool {
        matches!(self.state, State::Revoked)
    }

    fn broke(&mut self, status: &Status) {
        if status.code() == Code::Unauthenticated {
            tracing::info!(user = self.session.user_id(), %status, "session revoked; events end");
            self.state = State::Revoked;
            return;
        }
        tracing::debug!(user = self.session.user_id(), %status, pause = ?self.pause, "event stream broke");
        self.state = State::Broken {
            retry_at: Instant::now() + self.pause,
        };
        self.pause = (self.pause * 2).min(MAX_PAUSE);
    }
}

async fn subscribe(
    session: &UserSession,
    resume: &Resume,
) -> Result<Streaming<SubscribeResponse>, Status> {
    session
        .call(resume.request(), |backend, request| async move {
            backend.messaging().subscribe(request).await
        })
        .await
}
