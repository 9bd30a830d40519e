//! BridgeEvents: the events of every user a bridge process serves, over one stream.
//!
//! Each feed is one `Subscribe` run by the same core ([`Messaging::subscribe`]: hub
//! registration before the backlog, replay, `CaughtUp`, live events, presence, the session
//! watch, the re-read on overflow), whose items are tagged with the feed and forwarded onto the
//! bridge's one stream. What a bridge saves is an HTTP/2 stream, its buffers and a pump per
//! legacy connection on both sides; what each user costs here is what a `Subscribe` costs
//! minus the stream.
//!
//! Trust: the stream needs the bridge key (checked by the handler before this runs), and each
//! feed needs its user's access token, verified as a bearer token is. A leaked bridge key
//! therefore reads nobody's events by itself: the bridge can only follow users who logged in
//! through it, for as long as their sessions live (a revoked session ends its feed with
//! `SESSION_REVOKED`, as it ends a `Subscribe`).
//!
//! Bounds: at most [`MAX_FEEDS`] feeds per stream; each feed holds at most [`FEED_QUEUE`]
//! items between its core and the stream (behind that, the hub's bounded queue, whose overflow
//! makes the core re-read the log); the stream holds at most [`STREAM_QUEUE`] responses for the
//! bridge to read.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use rosetta_auth::{Authenticator, SessionGuard};
use rosetta_kit::{ApiError, Reason, tasks::Tasks};
use rosetta_proto::messaging::v1::{
    BridgeEventsRequest, BridgeEventsResponse, BridgeFeedAdd, BridgeFeedEnded, SubscribeResponse,
    bridge_events_request::Action, bridge_events_response, subscribe_response,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::{
    Messaging,
    stream::{Resume, SessionCheck},
};

/// Feeds one stream may hold; a bridge serving more users opens more streams.
pub const MAX_FEEDS: usize = 100_000;
/// Items of one feed waiting for the stream.
const FEED_QUEUE: usize = 16;
/// Responses waiting for the bridge to read them.
pub const STREAM_QUEUE: usize = 1024;

pub type BridgeOutbox = mpsc::Sender<Result<BridgeEventsResponse, Status>>;

/// The stream's open feeds: each one's number (so that a replaced feed's end does not forget
/// its successor) and what stops it.
#[derive(Clone, Default)]
struct Feeds(Arc<Mutex<FeedMap>>);

#[derive(Default)]
struct FeedMap {
    open: HashMap<u64, (u64, CancellationToken)>,
    next: u64,
}

impl Feeds {
    fn lock(&self) -> MutexGuard<'_, FeedMap> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens feed `id` (stopping an open feed of that id), unless the stream is full.
    fn open(&self, id: u64) -> Option<(u64, CancellationToken)> {
        let mut feeds = self.lock();
        if feeds.open.len() >= MAX_FEEDS && !feeds.open.contains_key(&id) {
            return None;
        }
        feeds.next += 1;
        let entry = (feeds.next, CancellationToken::new());
        if let Some((_, replaced)) = feeds.open.insert(id, entry.clone()) {
            replaced.cancel();
        }
        Some(entry)
    }

    fn stop(&self, id: u64) {
        if let Some((_, stop)) = self.lock().open.remove(&id) {
            stop.cancel();
        }
    }

    /// Forgets feed `id` if it is still the one numbered `number`.
    fn ended(&self, id: u64, number: u64) {
        let mut feeds = self.lock();
        if feeds.open.get(&id).is_some_and(|(n, _)| *n == number) {
            feeds.open.remove(&id);
        }
    }

    fn stop_all(&self) {
        for (_, (_, stop)) in self.lock().open.drain() {
            stop.cancel();
        }
    }
}

/// What a BridgeEvents stream needs besides the domain.
#[derive(Clone)]
pub struct BridgeFeeds {
    pub messaging: Arc<Messaging>,
    /// Verifies each feed's access token.
    pub auth: Authenticator,
    /// The feeds' session checks (each feed watches its session through it).
    pub sessions: Arc<SessionGuard>,
    /// The feeds and the stream itself; stopping it ends the stream with `UNAVAILABLE`.
    pub tasks: Tasks,
}

impl BridgeFeeds {
    /// Serves one stream: reads the bridge's adds and removes until the bridge closes its
    /// side or goes away, or the server stops; then stops every feed.
    pub async fn serve(self, mut requests: Streaming<BridgeEventsRequest>, out: BridgeOutbox) {
        let feeds = Feeds::default();
        let stopping = self.tasks.stopping().clone();
        loop {
            let request = tokio::select! {
                request = requests.message() => request,
                () = out.closed() => break,
                () = stopping.cancelled() => {
                    let _ = out.send(Err(ApiError::unavailable("the server is shutting down").into())).await;
                    break;
                }
            };
            match request {
                Ok(Some(BridgeEventsRequest {
                    action: Some(Action::Add(add)),
                })) => self.add(&feeds, add, &out),
                Ok(Some(BridgeEventsRequest {
                    action: Some(Action::Remove(remove)),
                })) => feeds.stop(remove.feed_id),
                Ok(Some(BridgeEventsRequest { action: None })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        feeds.stop_all();
    }

    fn add(&self, feeds: &Feeds, add: BridgeFeedAdd, out: &BridgeOutbox) {
        let id = add.feed_id;
        let Some((number, stop)) = feeds.open(id) else {
            let full = ApiError::new(
                tonic::Code::ResourceExhausted,
                Reason::LimitReached,
                format!("a stream holds at most {MAX_FEEDS} feeds"),
            );
            // Refused without waiting: a full stream must not hold up its reader.
            let _ = out.try_send(Ok(ended(id, 0, &full.into())));
            return;
        };
        let (this, out, feeds) = (self.clone(), out.clone(), feeds.clone());
        self.tasks.spawn(async move {
            this.feed(id, add, out, stop).await;
            feeds.ended(id, number);
        });
    }

    /// One feed: verify its token, then run the `Subscribe` core into a small queue whose
    /// items go onto the stream tagged with the feed, until the feed is stopped or ends.
    async fn feed(self, id: u64, add: BridgeFeedAdd, out: BridgeOutbox, stop: CancellationToken) {
        let caller = tokio::select! {
            verified = self.auth.verify(&add.access_token) => verified,
            () = stop.cancelled() => return,
        };
        let caller = match caller {
            Ok(caller) => caller,
            Err(err) => {
                let _ = out.send(Ok(ended(id, 0, &err.into()))).await;
                return;
            }
        };
        let resume = match Resume::from_parts(add.after_seq, &add.conversation_cursors) {
            Ok(resume) => resume,
            Err(err) => {
                let _ = out.send(Ok(ended(id, caller.user_id, &err.into()))).await;
                return;
            }
        };
        let user = caller.user_id;
        let session = SessionCheck::new(self.sessions.clone(), &caller.session_id);
        let (tx, mut rx) = crate::stream::outbox(FEED_QUEUE);
        let core = self.messaging.clone().subscribe(
            user,
            resume,
            tx,
            Some(session),
            self.tasks.stopping().clone(),
        );
        // Returning drops `rx`, which ends the core (it stops once its outbox is closed).
        let forward = async move {
            loop {
                let item = tokio::select! {
                    item = rx.recv() => item,
                    () = stop.cancelled() => return,
                };
                let Some(item) = item else { return };
                let last = item.is_err();
                let response = match item {
                    Ok(SubscribeResponse { item: Some(item) }) => tagged(id, user, item),
                    Ok(SubscribeResponse { item: None }) => continue,
                    Err(status) => ended(id, user, &status),
                };
                tokio::select! {
                    sent = out.send(Ok(response)) => if sent.is_err() { return },
                    () = stop.cancelled() => return,
                }
                if last {
                    return;
                }
            }
        };
        tokio::join!(core, forward);
    }
}

fn tagged(feed_id: u64, user_id: i64, item: subscribe_response::Item) -> BridgeEventsResponse {
    let item = match item {
        subscribe_response::Item::Event(event) => bridge_events_response::Item::Event(event),
        subscribe_response::Item::CaughtUp(caught_up) => {
            bridge_events_response::Item::CaughtUp(caught_up)
        }
    };
    BridgeEventsResponse {
        feed_id,
        user_id,
        item: Some(item),
    }
}

/// The end of a feed, as the status a `Subscribe` stream would have ended with.
fn ended(feed_id: u64, user_id: i64, status: &Status) -> BridgeEventsResponse {
    BridgeEventsResponse {
        feed_id,
        user_id,
        item: Some(bridge_events_response::Item::Ended(BridgeFeedEnded {
            code: status.code() as i32,
            reason: Reason::of(status)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            message: status.message().to_owned(),
        })),
    }
}
