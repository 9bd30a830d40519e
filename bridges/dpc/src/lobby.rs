//! The shared room. On the original chat server every connected socket received every line;
//! here lines go to the public group "dpc-lobby", so gRPC and other-protocol members take part.
//! One event stream per bridge process (the kit's `EventStream`, held with the session of any
//! DPC user who logged in; when that session is revoked, the newest one) receives the group's
//! messages; each is encoded once as the DPC push frame and fanned out
//! to every chat socket of this process, as the original fanned out to all of its sockets.
//!
//! The lobby is system-owned (nobody can dissolve it through the API), but should its group
//! still vanish (an operator, a restore), the bridge recovers: a line refused because the
//! group is gone or the sender is no member joins the lobby again ([`Lobby::rejoin`]), which
//! yields the current group, and the stream follows the new group from then on.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use rosetta_bridge_kit::{EventStream, UserSession};
use rosetta_proto::{
    account::v1::GetProfilesRequest,
    common::v1::{ConversationRef, conversation_ref},
    messaging::v1::{Announcement, ListMessagesRequest, Message, MessageKind, event, message},
    social::v1::JoinPublicGroupRequest,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::{LOBBY_SLUG, codec};

/// Lines kept for chat sockets that fall behind; a socket further behind skips lines.
const BACKLOG: usize = 1024;
/// Message ids remembered to deliver each message once across resubscriptions.
const SEEN: usize = 4096;
/// Pause before a new reader's stream, or another try at reading the history.
const RETRY: Duration = Duration::from_secs(1);
/// How long a new stream may take to come up before the history is read all the same.
const OPEN_PATIENCE: Duration = Duration::from_secs(10);
/// Messages sent this long before the first DPC login are still delivered when the stream
/// opens (allows for clock skew between the bridge and the messaging service).
const START_MARGIN_MS: i64 = 5_000;

/// A lobby message as every DPC chat socket receives it.
pub struct LobbyLine {
    /// Who sent it and with which idempotency key: the sending socket skips its own lines.
    pub sender_id: i64,
    pub client_message_id: String,
    /// An operator's announcement (its id): a socket that has shown it skips it.
    pub announcement: Option<i64>,
    /// The encoded push frame, `{"op": 0, "args": {"name": …}, "news": "<name>:<text>"}`.
    pub frame: Bytes,
}

pub struct Lobby {
    /// The lobby's group, known once a DPC user has logged in; replaced if it is re-created.
    group: watch::Sender<Option<i64>>,
    /// When the first DPC user logged in (Unix ms): the stream's start.
    started_ms: OnceLock<i64>,
    lines: broadcast::Sender<Arc<LobbyLine>>,
    /// The newest session able to read the lobby.
    reader: watch::Sender<Option<Arc<UserSession>>>,
    names: Mutex<HashMap<i64, String>>,
}

impl Lobby {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            group: watch::channel(None).0,
            started_ms: OnceLock::new(),
            lines: broadcast::channel(BACKLOG).0,
            reader: watch::channel(None).0,
            names: Mutex::new(HashMap::new()),
        })
    }

    /// The lobby's group id, known once a DPC user has logged in.
    pub fn group_id(&self) -> Option<i64> {
        *self.group.borrow()
    }

    /// A session of a lobby member (`group`): the stream may read with it.
    pub fn found(&self, group: i64, session: &Arc<UserSession>) {
        self.group.send_if_modified(|current| {
            let changed = *current != Some(group);
            *current = Some(group);
            changed
        });
        let _ = self.started_ms.set(now_ms());
        self.reader.send_replace(Some(session.clone()));
    }

    /// Joins `session`'s user to the lobby again (after a send to it was refused as NOT_FOUND
    /// or NOT_MEMBER): the service hands out the lobby as it is now, re-created if it was gone.
    pub async fn rejoin(&self, session: &Arc<UserSession>) -> Result<i64, Status> {
        let group = self.join(session).await?;
        tracing::info!(group, "rejoined the DPC lobby");
        Ok(group)
    }

    /// Makes `session`'s user a member of the lobby (done at every login, so DPC users are
    /// always members) and the session one the stream may read with; the lobby's group id.
    pub async fn join(&self, session: &Arc<UserSession>) -> Result<i64, Status> {
        let join = JoinPublicGroupRequest {
            slug: LOBBY_SLUG.into(),
            name: String::new(),
        };
        let group = session
            .call(join, |backend, request| async move {
                backend.social().join_public_group(request).await
            })
            .await?;
        self.found(group.id, session);
        Ok(group.id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LobbyLine>> {
        self.lines.subscribe()
    }

    pub fn remember_name(&self, user_id: i64, name: &str) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() > 100_000 {
            names.clear();
        }
        names.insert(user_id, name.to_owned());
    }

    /// A user's name as DPC clients show it: the canonical user name.
    pub async fn name_of(&self, user_id: i64, session: &UserSession) -> String {
        if let Some(name) = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user_id)
        {
            return name.clone();
        }
        let found = session
            .call(
                GetProfilesRequest {
                    user_ids: vec![user_id],
                },
                |backend, request| async move { backend.account().get_profiles(request).await },
            )
            .await;
        match found.map(|profiles| profiles.users.into_iter().next()) {
            Ok(Some(user)) => {
                self.remember_name(user_id, &user.username);
                user.username
            }
            Ok(None) => {
                tracing::info!(user_id, "sender's profile not found; shown under the id");
                user_id.to_string()
            }
            Err(status) => {
                tracing::warn!(user_id, %status, "sender's profile not read; shown under the id");
                user_id.to_string()
            }
        }
    }

    /// Follows the lobby until `closing` is cancelled: an [`EventStream`] opened with the
    /// newest session able to read it (which mends its own breaks), the group's history read
    /// whenever a stream starts or the lobby was re-created, and a newer reader taken once the
    /// stream's session is revoked.
    pub async fn run(self: Arc<Self>, closing: CancellationToken) {
        let mut readers = self.reader.subscribe();
        let mut groups = self.group.subscribe();
        let mut seen = Seen::default();
        loop {
            let session = tokio::select! {
                () = closing.cancelled() => return,
                session = readers.wait_for(Option::is_some) => match session {
                    Ok(session) => session.clone(),
                    Err(_) => return,
                },
            };
            let Some(session) = session else { continue };
            let opened = tokio::select! {
                () = closing.cancelled() => return,
                opened = EventStream::open(session.clone(), OPEN_PATIENCE) => opened,
            };
            let ended = match opened {
                Ok(mut events) => {
                    let followed = self.follow(&session, &mut events, &mut groups, &mut seen);
                    tokio::select! {
                        () = closing.cancelled() => return,
                        ended = followed => ended,
                    }
                }
                Err(status) => {
                    tracing::warn!(%status, "DPC lobby stream not opened");
                    status.code() == Code::Unauthenticated
                }
            };
            if ended {
                // That session is gone: wait for the next login.
                self.reader.send_if_modified(|current| match current {
                    Some(s) if Arc::ptr_eq(s, &session) => {
                        *current = None;
                        true
                    }
                    _ => false,
                });
            }
            // Never in a hot loop.
            tokio::select! {
                () = closing.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Delivers the lobby's lines from `events` until its session is revoked (then true),
    /// catching up from the group's history first and again whenever the lobby's group
    /// changes.
    async fn follow(
        &self,
        session: &UserSession,
        events: &mut EventStream,
        groups: &mut watch::Receiver<Option<i64>>,
        seen: &mut Seen,
    ) -> bool {
        loop {
            let Some(group) = *groups.borrow_and_update() else {
                return false;
            };
            if seen.group != group {
                // A re-created lobby: its sequence numbers start over.
                *seen = Seen {
                    group,
                    ..Seen::default()
                };
            }
            // Live delivery runs from the stream's start; history covers what came before.
            while let Err(status) = self.catch_up(session, group, seen).await {
                tracing::warn!(%status, "DPC lobby history not read");
                if status.code() == Code::Unauthenticated {
                    return true;
                }
                tokio::time::sleep(RETRY).await;
            }
            loop {
                let event = tokio::select! {
                    // The lobby was re-created: follow the new group.
                    changed = groups.changed() => match changed {
                        Ok(()) => break,
                        Err(_) => return false,
                    },
                    event = events.next() => event,
                };
                let Some(event) = event else { return true };
                match event.kind {
                    Some(event::Kind::Message(message))
                        if message.to == Some(message::To::ToGroupId(group)) =>
                    {
                        self.deliver(session, message, seen).await;
                    }
                    // The room hears it, as every socket heard every line.
                    Some(event::Kind::Announcement(announcement)) => {
                        let _ = self.lines.send(Arc::new(announcement_line(&announcement)));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Delivers what the group received while no stream was open: after the last delivered
    /// message, or, for the first stream, since the first DPC login.
    async fn catch_up(
        &self,
        session: &UserSession,
        group: i64,
        seen: &mut Seen,
    ) -> Result<(), Status> {
        let conversation = Some(ConversationRef {
            r#ref: Some(conversation_ref::Ref::GroupId(group)),
        });
        let since_ms = self.started_ms.get().copied().unwrap_or(0) - START_MARGIN_MS;
        let mut after = seen.last_seq;
        loop {
            let page_after = ListMessagesRequest {
                conversation,
                after_seq: after,
                limit: 500,
                ..Default::default()
            };
            // Paged by sequence number, delivering as it reads (not the kit's token paging).
            let page = session
                .call(page_after, |backend, request| async move {
                    backend.messaging().list_messages(request).await
                })
                .await?;
            if page.messages.is_empty() {
                return Ok(());
            }
            for message in page.messages {
                after = after.max(message.seq);
                if seen.last_seq > 0 || message.sent_at_ms >= since_ms {
                    self.deliver(session, message, seen).await;
                }
            }
            if !page.has_more {
                return Ok(());
            }
        }
    }

    async fn deliver(&self, session: &UserSession, message: Message, seen: &mut Seen) {
        if !seen.first_time(message.id, message.seq) || message.recalled {
            return;
        }
        let text = match message.kind() {
            MessageKind::Text => message.text,
            // Attachments cannot be shown by DPC clients: their caption stands in.
            _ if !message.text.is_empty() => message.text,
            _ => "[file]".to_owned(),
        };
        let name = self.name_of(message.sender_id, session).await;
        // The stored text has lost the input box's trailing newline (see the chat server).
        let frame = codec::frame(&codec::chat_push(&name, &format!("{text}\n")));
        let _ = self.lines.send(Arc::new(LobbyLine {
            sender_id: message.sender_id,
            client_message_id: message.client_message_id,
            announcement: None,
            frame: frame.into(),
        }));
    }
}

/// An operator's announcement as a chat line from the reserved name `system` (no account can
/// take it), with the input box's trailing newline every line has.
pub fn announcement_line(announcement: &Announcement) -> LobbyLine {
    let news = format!("{}\n", announcement.text);
    let frame = codec::frame(&codec::chat_push(rosetta_proto::system::NAME, &news));
    LobbyLine {
        sender_id: rosetta_proto::system::USER_ID,
        client_message_id: String::new(),
        announcement: Some(announcement.id),
        frame: frame.into(),
    }
}

/// Ids of recently delivered messages and the highest conversation seq seen in `group`.
#[derive(Default)]
struct Seen {
    group: i64,
    ids: HashSet<i64>,
    order: VecDeque<i64>,
    last_seq: u64,
}

impl Seen {
    fn first_time(&mut self, id: i64, seq: u64) -> bool {
        self.last_seq = self.last_seq.max(seq);
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
