//! One event stream per bridge process: every logged-in connection's events come over a single
//! `BridgeEvents` stream (the messaging service's service-to-service form of `Subscribe`),
//! routed here by feed to the connection's [`Feed`].
//!
//! A connection's share at rest is one [`Feed`]: a few words, a queue that allocates nothing
//! until an event waits in it and gives its buffer back once drained, and no task. One driver
//! task per process holds the stream: it sends the adds and removes the feeds ask for, routes
//! what comes back, and when the stream breaks it opens a new one and adds every feed again
//! after the newest event that feed queued, so nothing is lost or repeated. It ends when the
//! last feed leaves (at shutdown, once every session has ended) and starts again with the next.
//!
//! A feed whose connection reads too slowly holds at most [`FEED_QUEUE`] events: behind that
//! its queue is dropped and the feed is added again (under a new number, so nothing of the old
//! one is mixed in) after the newest event the connection took; the log has the rest.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use futures::stream::{FuturesUnordered, StreamExt as _};
use rosetta_proto::{
    Reason,
    messaging::v1::{
        BridgeEventsRequest, BridgeEventsResponse, BridgeFeedAdd, BridgeFeedRemove, CaughtUp,
        Event, bridge_events_request::Action, bridge_events_response::Item,
        messaging_service_client::MessagingServiceClient,
    },
    metadata,
};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Request, Status, Streaming,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::{UserSession, backend::TraceContext, resume::Resume};

/// Events one feed may hold for a connection that reads slowly.
pub const FEED_QUEUE: usize = 256;
/// A drained queue whose buffer grew past this gives the buffer back.
const KEEP_CAPACITY: usize = 8;
/// Adds and removes on their way to the service.
const REQUEST_QUEUE: usize = 64;
/// Adds waiting for their access tokens at once.
const ADDS_IN_FLIGHT: usize = 64;
/// The first pause before reopening a broken stream; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(15);

/// The process's multiplexed event stream. Shared by every clone of the backend it came with.
pub struct Mux {
    channel: Channel,
    key: MetadataValue<Ascii>,
    calls: TraceContext,
    state: Mutex<MuxState>,
    /// Wakes the driver: feeds were added or removed.
    wake: Notify,
}

#[derive(Default)]
struct MuxState {
    feeds: HashMap<u64, Arc<Feed>>,
    /// Feeds to add on the open stream (the driver takes them; a feed removed or renumbered
    /// before its turn is skipped then), so that routing an event never walks every feed.
    to_add: Vec<Arc<Feed>>,
    /// Feeds to remove on the open stream.
    removed: Vec<u64>,
    next_id: u64,
    /// A driver task runs.
    driving: bool,
    /// The service refused the stream itself (no bridge key there, or no `BridgeEvents`):
    /// feeds fall back to one `Subscribe` each.
    refused: Option<Status>,
}

/// One connection's events as they arrive.
pub struct Feed {
    session: Arc<UserSession>,
    state: Mutex<FeedState>,
    wake: Notify,
}

#[derive(Default)]
struct FeedState {
    /// The feed's number on the stream; a new one on each re-add after an overflow or an end.
    id: u64,
    events: VecDeque<Event>,
    /// The newest events queued (the user's log seq, each large group's message seq): a re-add
    /// resumes after them, and older ones are repeats.
    after: Resume,
    /// The newest events the connection took.
    taken: Resume,
    caught_up: bool,
    ended: Option<Status>,
}

/// What a feed has for its connection.
pub enum Take {
    Event(Box<Event>),
    /// The feed ended with this status (a revoked session, a refusal, a failure).
    Ended(Status),
    Empty,
}

impl Mux {
    pub(crate) fn new(channel: Channel, key: MetadataValue<Ascii>, calls: TraceContext) -> Self {
        Self {
            channel,
            key,
            calls,
            state: Mutex::new(MuxState::default()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MuxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds on the stream now (each a login being served).
    pub fn feeds(&self) -> usize {
        self.lock().feeds.len()
    }

    /// Why the service refused the stream, if it did: feeds then subscribe one by one.
    pub fn refused(&self) -> Option<Status> {
        self.lock().refused.clone()
    }

    /// Starts `session`'s feed, resuming after `after` (from now when it is empty).
    pub fn add(self: &Arc<Self>, session: Arc<UserSession>, after: Resume) -> Arc<Feed> {
        let feed = Arc::new(Feed {
            session,
            state: Mutex::new(FeedState {
                taken: after.clone(),
                after,
                ..FeedState::default()
            }),
            wake: Notify::new(),
        });
        let mut state = self.lock();
        if let Some(refused) = &state.refused {
            feed.end(refused.clone());
            return feed;
        }
        state.next_id += 1;
        let id = state.next_id;
        feed.lock().id = id;
        state.feeds.insert(id, feed.clone());
        state.to_add.push(feed.clone());
        self.drive(&mut state);
        feed
    }

    /// Adds `feed` again under a new number, after the newest event its connection took.
    pub fn readd(self: &Arc<Self>, feed: &Arc<Feed>) {
        let mut state = self.lock();
        self.renumber(&mut state, feed);
        self.drive(&mut state);
    }

    /// Stops `feed` (its connection's login is over).
    pub fn remove(&self, feed: &Feed) {
        let id = feed.lock().id;
        let mut state = self.lock();
        if state.feeds.remove(&id).is_some() {
            state.removed.push(id);
            self.wake.notify_one();
        }
    }

    fn renumber(&self, state: &mut MuxState, feed: &Arc<Feed>) {
        let mut inner = feed.lock();
        if state.feeds.remove(&inner.id).is_some() {
            state.removed.push(inner.id);
        }
        state.next_id += 1;
        let id = state.next_id;
        inner.id = id;
        inner.events = VecDeque::new();
        inner.after = inner.taken.clone();
        inner.ended = None;
        state.feeds.insert(id, feed.clone());
        state.to_add.push(feed.clone());
    }

    /// Wakes the driver, starting one if none runs.
    fn drive(self: &Arc<Self>, state: &mut MuxState) {
        if state.driving {
            self.wake.notify_one();
        } else {
            state.driving = true;
            tokio::spawn(self.clone().run());
        }
    }

    /// The driver: holds a stream while there are feeds, reopening it after a break.
    async fn run(self: Arc<Self>) {
        let mut pause = FIRST_PAUSE;
        loop {
            if self.stop_if_idle() {
                return;
            }
            match self.open().await {
                Ok((requests, responses)) => {
                    pause = FIRST_PAUSE;
                    self.serve(requests, responses).await;
                }
                Err(status) if refusal(&status) => {
                    tracing::error!(%status, "the messaging service refused BridgeEvents; \
                        every login subscribes on its own");
                    self.refuse(status);
                    return;
                }
                Err(status) => {
                    tracing::warn!(%status, "BridgeEvents failed to open");
                    self.fail_opening(&status);
                }
            }
            if self.stop_if_idle() {
                return;
            }
            tracing::debug!(?pause, "BridgeEvents broke; reopening");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Ends the driver when no feed is left (atomically with `add` starting a new one).
    fn stop_if_idle(&self) -> bool {
        let mut state = self.lock();
        if state.feeds.is_empty() {
            state.driving = false;
            state.removed = Vec::new();
            state.to_add = Vec::new();
            return true;
        }
        false
    }

    async fn open(
        &self,
    ) -> Result<
        (
            mpsc::Sender<BridgeEventsRequest>,
            Streaming<BridgeEventsResponse>,
        ),
        Status,
    > {
        // The new stream knows no feed yet: each is added again after its newest event.
        {
            let mut state = self.lock();
            state.removed = Vec::new();
            state.to_add = state.feeds.values().cloned().collect();
        }
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert(metadata::BRIDGE_KEY, self.key.clone());
        let mut client =
            MessagingServiceClient::with_interceptor(self.channel.clone(), self.calls.clone());
        let responses = client.bridge_events(request).await?.into_inner();
        Ok((tx, responses))
    }

    /// Sends what the feeds ask for and routes what comes back, until the stream breaks or
    /// the last feed leaves. Adds wait for their access tokens (a refresh is a call) side by
    /// side, at most [`ADDS_IN_FLIGHT`] at once, while events keep being routed: after a
    /// break every feed is added again, and one slow refresh must not hold up the others.
    async fn serve(
        &self,
        requests: mpsc::Sender<BridgeEventsRequest>,
        mut responses: Streaming<BridgeEventsResponse>,
    ) {
        let mut waiting = VecDeque::new();
        let mut adding = FuturesUnordered::new();
        loop {
            let (adds, removes, idle) = self.pending();
            if idle {
                return;
            }
            for id in removes {
                let remove = Action::Remove(BridgeFeedRemove { feed_id: id });
                if !send(&requests, remove).await {
                    return;
                }
            }
            waiting.extend(adds);
            while adding.len() < ADDS_IN_FLIGHT
                && let Some(feed) = waiting.pop_front()
            {
                adding.push(async move { feed.add_request().await });
            }
            tokio::select! {
                response = responses.message() => match response {
                    Ok(Some(response)) => self.route(response),
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "BridgeEvents ended");
                        return;
                    }
                },
                Some(add) = adding.next() => {
                    // Checked here, by the task that also sends the removes: a feed removed
                    // or renumbered while its token was fetched is not added (a later remove
                    // is sent after this add).
                    if let Some(add) = add
                        && self.lock().feeds.contains_key(&add.feed_id)
                        && !send(&requests, Action::Add(add)).await
                    {
                        return;
                    }
                }
                () = self.wake.notified() => {}
            }
        }
    }

    /// The feeds to add and the ones to remove on the open stream; whether none is left.
    fn pending(&self) -> (Vec<Arc<Feed>>, Vec<u64>, bool) {
        let mut state = self.lock();
        let removes = std::mem::take(&mut state.removed);
        let adds = std::mem::take(&mut state.to_add);
        (adds, removes, state.feeds.is_empty())
    }

    fn route(&self, response: BridgeEventsResponse) {
        let Some(feed) = self.lock().feeds.get(&response.feed_id).cloned() else {
            return; // a feed removed or renumbered meanwhile
        };
        match response.item {
            Some(Item::Event(event)) => {
                let kept = feed.push(event);
                if !kept {
                    let mut state = self.lock();
                    if state.feeds.contains_key(&response.feed_id) {
                        self.renumber(&mut state, &feed);
                        self.wake.notify_one();
                    }
                }
            }
            Some(Item::CaughtUp(caught_up)) => feed.caught_up(&caught_up),
            Some(Item::Ended(ended)) => {
                let code = Code::from_i32(ended.code);
                let status = match ended.reason.parse::<Reason>() {
                    Ok(reason) => reason.status(code, ended.message),
                    Err(_) => Status::new(code, ended.message),
                };
                feed.end(status);
            }
            None => {}
        }
    }

    /// The stream could not be opened: logins still waiting for their first `CaughtUp` fail
    /// now, as their own `Subscribe` would have, rather than being answered as if live; feeds
    /// that were live wait for the next stream.
    fn fail_opening(&self, status: &Status) {
        for feed in self.lock().feeds.values() {
            let mut state = feed.lock();
            if !state.caught_up && state.ended.is_none() {
                state.ended = Some(status.clone());
                drop(state);
                feed.wake.notify_one();
            }
        }
    }

    /// The service will not serve the stream: every feed ends with `status`, and later ones
    /// at once.
    fn refuse(&self, status: Status) {
        let mut state = self.lock();
        for (_, feed) in state.feeds.drain() {
            feed.end(status.clone());
        }
        state.refused = Some(status);
        state.driving = false;
    }
}

/// A refusal of the stream itself, which retrying does not mend.
pub fn refusal(status: &Status) -> bool {
    status.code() == Code::Unimplemented || Reason::of(status) == Some(Reason::BridgeKeyRequired)
}

async fn send(requests: &mpsc::Sender<BridgeEventsRequest>, action: Action) -> bool {
    requests
        .send(BridgeEventsRequest {
            action: Some(action),
        })
        .await
        .is_ok()
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn session(&self) -> &Arc<UserSession> {
        &self.session
    }

    /// The add that starts this feed on a stream, with a fresh access token; `None` when no
    /// token can be had (the feed then ends) or the feed was renumbered meanwhile (its new
    /// number has an add of its own).
    async fn add_request(&self) -> Option<BridgeFeedAdd> {
        let id = self.lock().id;
        let access_token = match self.session.access_token().await {
            Ok(token) => token,
            Err(status) => {
                self.end(status);
                return None;
            }
        };
        let state = self.lock();
        if state.id != id {
            return None;
        }
        let resume = state.after.request();
        Some(BridgeFeedAdd {
            feed_id: state.id,
            access_token,
            after_seq: resume.after_seq,
            conversation_cursors: resume.conversation_cursors,
        })
    }

    /// Queues `event`; `false` when the queue is full (it is then emptied).
    fn push(&self, event: Event) -> bool {
        let mut state = self.lock();
        if state.after.repeats(&event) {
            return true; // a repeat: the feed resumed after it
        }
        state.after.seen(&event);
        if state.events.len() >= FEED_QUEUE {
            state.events = VecDeque::new();
            return false;
        }
        state.events.push_back(event);
        drop(state);
        self.wake.notify_one();
        true
    }

    fn caught_up(&self, caught_up: &CaughtUp) {
        let mut state = self.lock();
        state.after.caught_up(caught_up);
        if state.taken.after_seq().is_none() {
            // Nothing taken yet: the connection starts where the catch-up left it.
            state.taken.caught_up(caught_up);
        }
        state.caught_up = true;
        drop(state);
        self.wake.notify_one();
    }

    fn end(&self, status: Status) {
        self.lock().ended = Some(status);
        self.wake.notify_one();
    }

    /// The next thing for the connection, without waiting.
    pub fn take(&self) -> Take {
        let mut state = self.lock();
        if let Some(event) = state.events.pop_front() {
            if state.events.is_empty() && state.events.capacity() > KEEP_CAPACITY {
                state.events = VecDeque::new();
            }
            state.taken.seen(&event);
            return Take::Event(Box::new(event));
        }
        match &state.ended {
            Some(status) => Take::Ended(status.clone()),
            None => Take::Empty,
        }
    }

    /// Waits until something may be there to take (a stored wake-up counts).
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Whether the feed is live (its replay is over), or why it ended.
    pub fn ready(&self) -> Option<Result<(), Status>> {
        let state = self.lock();
        match (&state.ended, state.caught_up) {
            (Some(status), _) => Some(Err(status.clone())),
            (None, true) => Some(Ok(())),
            (None, false) => None,
        }
    }

    /// Where the events the connection took end.
    pub fn taken(&self) -> Resume {
        self.lock().taken.clone()
    }
}
