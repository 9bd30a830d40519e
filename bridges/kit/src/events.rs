//! A logged-in user's canonical event stream, as every bridge reads it: opened once at login
//! (the login is answered once the user counts as online), mended after breaks from the newest
//! event seen (so nothing sent meanwhile is lost or repeated), and over for good when the
//! session is revoked.
//!
//! By default a login's events come over the bridge process's one multiplexed stream
//! ([`crate::mux`], `BridgeEvents`), which needs the bridge key; a backend without the key, or
//! a messaging service that refuses the stream, gives each login a `Subscribe` of its own
//! ([`direct`]). The bridges see the same [`EventStream`] either way.
//!
//! [`EventStream::next`] is cancel-safe: a bridge can poll it in a `select!` beside its socket,
//! its heartbeat and its shutdown, and a branch taken elsewhere loses no event and no pause.

mod direct;

use std::{sync::Arc, time::Duration};

use rosetta_proto::messaging::v1::Event;
use tokio::time::Instant;
use tonic::{Code, Status};

use self::direct::{Direct, FIRST_PAUSE, MAX_PAUSE};
use crate::{
    UserSession,
    mux::{self, Feed, Mux, Take},
    resume::Resume,
};

/// The user's events, one at a time, for as long as their session lives.
pub struct EventStream(Source);

enum Source {
    Shared(Shared),
    Direct(Box<Direct>),
}

/// A feed of the process's multiplexed stream.
struct Shared {
    mux: Arc<Mux>,
    feed: Arc<Feed>,
    /// Set while a feed that ended (not revoked) waits to be added again.
    retry_at: Option<Instant>,
    pause: Duration,
    revoked: bool,
}

impl EventStream {
    /// Subscribes and waits until the stream is live (its catch-up marker arrived), so the
    /// user counts as online before the login is answered; after `patience` the stream is
    /// kept all the same and comes up by itself.
    pub async fn open(session: Arc<UserSession>, patience: Duration) -> Result<Self, Status> {
        let Some(mux) = session.backend().mux.clone() else {
            return Self::direct(session, Resume::default(), patience).await;
        };
        let feed = mux.add(session.clone(), Resume::default());
        let deadline = Instant::now() + patience;
        loop {
            match feed.ready() {
                Some(Ok(())) => break,
                Some(Err(status)) => {
                    mux.remove(&feed);
                    if mux::refusal(&status) {
                        return Self::direct(session, Resume::default(), patience).await;
                    }
                    return Err(status);
                }
                None => {
                    if tokio::time::timeout_at(deadline, feed.changed())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        Ok(Self(Source::Shared(Shared {
            mux,
            feed,
            retry_at: None,
            pause: FIRST_PAUSE,
            revoked: false,
        })))
    }

    async fn direct(
        session: Arc<UserSession>,
        resume: Resume,
        patience: Duration,
    ) -> Result<Self, Status> {
        let direct = Direct::open(session, resume, patience).await?;
        Ok(Self(Source::Direct(Box::new(direct))))
    }

    /// The next event; `None` once the session is revoked (logged out elsewhere, password
    /// changed, account deleted): the bridge then ends the login. Breaks are mended here.
    ///
    /// The future waiting here is kept inline in every idle connection's task, so it holds only
    /// what waiting on the shared feed needs: a direct stream's wait (the fallback) and the
    /// switch to it are boxed, allocated only where they are taken.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let shared = match &mut self.0 {
                Source::Direct(direct) => return Box::pin(direct.next()).await,
                Source::Shared(shared) => shared,
            };
            match shared.next().await {
                Next::Event(event) => return Some(*event),
                Next::Revoked => return None,
                Next::Refused => match Box::pin(shared.fall_back()).await {
                    Some(direct) => self.0 = Source::Direct(Box::new(direct)),
                    None => return None,
                },
            }
        }
    }

    /// Whether the session behind the stream was found revoked.
    pub fn revoked(&self) -> bool {
        match &self.0 {
            Source::Direct(direct) => direct.revoked(),
            Source::Shared(shared) => shared.revoked,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Source::Shared(shared) = &self.0 {
            shared.mux.remove(&shared.feed);
        }
    }
}

enum Next {
    Event(Box<Event>),
    Revoked,
    /// The multiplexed stream is refused: subscribe directly.
    Refused,
}

impl Shared {
    /// The service stopped serving the stream: a Subscribe of our own after the newest event
    /// taken, mended by its own retries; `None` if the session turns out revoked.
    async fn fall_back(&mut self) -> Option<Direct> {
        self.mux.remove(&self.feed);
        let (session, after) = (self.feed.session().clone(), self.feed.taken());
        loop {
            match Direct::open(session.clone(), after.clone(), Duration::ZERO).await {
                Ok(direct) => return Some(direct),
                Err(status) if status.code() == Code::Unauthenticated => {
                    self.revoked = true;
                    return None;
                }
                Err(status) => {
                    tracing::debug!(%status, "subscribe failed; retrying");
                    tokio::time::sleep(MAX_PAUSE).await;
                }
            }
        }
    }

    async fn next(&mut self) -> Next {
        loop {
            if self.revoked {
                return Next::Revoked;
            }
            if let Some(retry_at) = self.retry_at {
                // Boxed: only a feed waiting to be added again pays for the timer.
                Box::pin(tokio::time::sleep_until(retry_at)).await;
                self.retry_at = None;
                self.mux.readd(&self.feed);
            }
            match self.feed.take() {
                Take::Event(event) => {
                    self.pause = FIRST_PAUSE;
                    return Next::Event(event);
                }
                Take::Ended(status) if mux::refusal(&status) => return Next::Refused,
                Take::Ended(status) if status.code() == Code::Unauthenticated => {
                    let user = self.feed.session().user_id();
                    tracing::info!(user, %status, "session revoked; events end");
                    self.revoked = true;
                }
                Take::Ended(status) => {
                    let user = self.feed.session().user_id();
                    tracing::debug!(user, %status, pause = ?self.pause, "event feed ended");
                    self.retry_at = Some(Instant::now() + self.pause);
                    self.pause = (self.pause * 2).min(MAX_PAUSE);
                }
                Take::Empty => self.feed.changed().await,
            }
        }
    }
}

/// The next event of `events`, or never when there is none (no login yet): for a `select!`
/// arm that is only live while a login is.
pub async fn next_event(events: Option<&mut EventStream>) -> Option<Event> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}
