//! The chat server (9998): one long-lived socket per client window, no login frame. Every
//! socket receives the lobby's lines; a line a socket sends carries name and password, is
//! checked (through the remembered logins) and sent to the lobby group.
//!
//! A socket belongs to nobody until it sends a line (it may only listen); from then on to the
//! user of its latest line, who is online while it is open and goes offline when it closes
//! (unless another chat socket of theirs is still open on this process).

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};

use rosetta_bridge_kit::{
    Connections, EventStream, Live, OnClose, UserSession, end_login, login, next_event,
};
use rosetta_proto::{
    messaging::v1::{Event, MessageKind, SendMessageRequest, event, send_message_request},
    social::v1::PresenceStatus,
};
use tokio::{
    net::{TcpStream, tcp::OwnedWriteHalf},
    sync::broadcast::error::RecvError,
};
use tonic::{Code, Status};
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{ChatLine, Credentials, FrameError},
    lobby::announcement_line,
    logins::{AuthError, Recheck},
    refusal::{Refusal, refusal},
    wire::{self, FrameReader},
};

/// Idempotency keys of this socket's latest lines, so it does not receive them back.
const OWN_LINES: usize = 64;
/// Announcement ids a socket remembers (at most 16 are active at once).
const SHOWN: usize = 32;
/// How long a chat window's first line waits for its user's event stream to come up.
const OPEN_PATIENCE: Duration = Duration::from_secs(5);

pub async fn serve(stream: TcpStream, peer: SocketAddr, conns: Connections, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    let mut lines = shared.lobby.subscribe();
    // Every await but the idle wait is boxed: this future is allocated whole for each chat
    // window, which mostly listens for hours, so a call's state kept inline would size them
    // all (12 KB a window before).
    let mut own: VecDeque<(i64, String)> = VecDeque::new();
    let mut owner = Owner::Nobody;
    let mut shown = Shown::default();
    loop {
        tokio::select! {
            () = conns.closing.cancelled() => break,
            line = lines.recv() => match line {
                Ok(line) => {
                    let echo = own
                        .iter()
                        .any(|(u, k)| *u == line.sender_id && *k == line.client_message_id);
                    let seen = line.announcement.is_some_and(|id| !shown.first_time(id));
                    if echo || seen {
                        continue;
                    }
                    if !Box::pin(push(&mut write, &line.frame, &conns)).await {
                        break;
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "chat socket fell behind; lines skipped");
                    conns.counters.error("push");
                }
                Err(RecvError::Closed) => break,
            },
            // The owner's own events are not shown (the lobby's lines come above) but for an
            // announcement, which the room's stream skips when its user had it already; the
            // stream is also how a revoked session is noticed.
            event = next_event(owner.events()) => match event {
                None => owner = Box::pin(owner.revoked(&shared)).await,
                Some(Event { kind: Some(event::Kind::Announcement(announcement)), .. }) => {
                    if shown.first_time(announcement.id) {
                        let line = announcement_line(&announcement);
                        if !Box::pin(push(&mut write, &line.frame, &conns)).await {
                            break;
                        }
                    }
                }
                Some(_) => {}
            },
            frame = reader.next() => match frame {
                Ok(Some(map)) => {
                    conns.counters.frame_in("line");
                    let span = tracing::info_span!("frame", command = "line");
                    let keep = match ChatLine::parse(&map) {
                        Ok(line) => {
                            let name = line.credentials.name.clone();
                            let speaker = Box::pin(
                                send_line(line, peer, &conns, &shared, &mut own).instrument(span),
                            );
                            if let Some(session) = speaker.await {
                                owner = Box::pin(owner.spoken_by(&shared, name, session)).await;
                            }
                            true
                        }
                        // The original ignores other ops.
                        Err(FrameError::UnknownOp(_)) => true,
                        Err(err) => {
                            tracing::debug!(parent: &span, ?err, "bad chat frame");
                            false
                        }
                    };
                    if !keep {
                        conns.counters.error("line");
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, "chat connection refused");
                    conns.counters.error("line");
                    break;
                }
            },
        }
    }
    Box::pin(owner.close()).await;
}

/// Writes a room line or announcement to the socket; `false` once it is gone.
async fn push(write: &mut OwnedWriteHalf, frame: &[u8], conns: &Connections) -> bool {
    if wire::send(write, frame).await.is_err() {
        return false;
    }
    conns.counters.frame_out("push");
    true
}

/// Announcements a socket has shown (the newest few), so that one reaching it both through
/// the room and through its owner's stream shows once.
#[derive(Default)]
struct Shown(VecDeque<i64>);

impl Shown {
    /// Whether `id` is new here; remembers it.
    fn first_time(&mut self, id: i64) -> bool {
        if self.0.contains(&id) {
            return false;
        }
        if self.0.len() >= SHOWN {
            self.0.pop_front();
        }
        self.0.push_back(id);
        true
    }
}

/// Whose window a chat socket is.
enum Owner {
    /// No line sent yet: a listener, counted for nobody.
    Nobody,
    /// The user of the latest line, counted among their live chat sockets.
    User {
        live: Live,
        name: String,
        session: Arc<UserSession>,
        /// The session's events, watched for its revocation (a password change elsewhere).
        /// Absent when it could not be opened (the services are down; logged).
        events: Option<EventStream>,
    },
}

impl Owner {
    /// The owner after `session`'s user sent a line: the same user keeps the socket (with the
    /// newest session); another user takes it over from the previous one.
    async fn spoken_by(self, shared: &Shared, name: String, session: Arc<UserSession>) -> Self {
        let (live, events) = match self {
            Owner::User {
                live,
                session: held,
                events,
                ..
            } if live.user_id() == session.user_id() => {
                let events = if Arc::ptr_eq(&held, &session) {
                    events
                } else {
                    drop(events);
                    watch(&session).await
                };
                (live, events)
            }
            previous => {
                previous.close().await;
                let live = shared.live.enter(session.user_id()).await;
                // The original showed whoever was connected; an open chat window is presence.
                if live.first()
                    && let Err(status) = login::set_presence(&session, PresenceStatus::Online).await
                {
                    tracing::warn!(user = session.user_id(), %status, "online on chat failed");
                }
                (live, watch(&session).await)
            }
        };
        Owner::User {
            live,
            name,
            session,
            events,
        }
    }

    fn events(&mut self) -> Option<&mut EventStream> {
        match self {
            Owner::User { events, .. } => events.as_mut(),
            Owner::Nobody => None,
        }
    }

    /// The owner's session was revoked (a password change elsewhere): the window's login
    /// ends and it belongs to nobody until its next line, which is checked with that line's
    /// password (the remembered login is forgotten, so an old password is refused). The socket
    /// stays open: it still receives the room, as every socket does.
    async fn revoked(self, shared: &Shared) -> Self {
        let Owner::User {
            live,
            name,
            session,
            events,
        } = self
        else {
            return Owner::Nobody;
        };
        tracing::info!(user = session.user_id(), "chat window's session revoked");
        drop(events);
        shared.logins.forget(&name, &session);
        // The revoked session cannot sign the user out; a newer one of theirs (a window that
        // spoke with the new password) can, if this was their last window.
        let signer = shared.logins.current(&name).unwrap_or(session);
        end_login(live, &signer, OnClose::KeepSession).await;
        Owner::Nobody
    }

    /// The socket closed: its user goes offline if it was their last chat socket here. The
    /// session stays: it is the remembered login the user's other sockets reuse.
    async fn close(self) {
        if let Owner::User {
            live,
            session,
            events,
            ..
        } = self
        {
            drop(events);
            end_login(live, &session, OnClose::KeepSession).await;
        }
    }
}

/// The event stream of `session`, or none (logged) if it cannot be opened now.
async fn watch(session: &Arc<UserSession>) -> Option<EventStream> {
    match EventStream::open(Arc::clone(session), OPEN_PATIENCE).await {
        Ok(events) => Some(events),
        Err(status) => {
            tracing::warn!(user = session.user_id(), %status, "chat window's events not opened");
            None
        }
    }
}

/// Sends one line to the lobby; the session of its sender, once the credentials passed. Bad
/// credentials drop the line without a reply: the original's unframed error bytes would break
/// the client's receive thread.
async fn send_line(
    line: ChatLine,
    peer: SocketAddr,
    conns: &Connections,
    shared: &Shared,
    own: &mut VecDeque<(i64, String)>,
) -> Option<Arc<UserSession>> {
    let ChatLine { credentials, news } = line;
    let session = authenticate(shared, conns, &credentials, peer).await?;
    // The client's input box always ends the text with a newline; it is put back on delivery.
    let text = news.strip_suffix('\n').unwrap_or(&news);
    let Some(group) = shared.lobby.group_id() else {
        return Some(session);
    };
    if text.is_empty() {
        return Some(session);
    }
    let key = uuid::Uuid::new_v4().to_string();
    own.push_back((session.user_id(), key.clone()));
    if own.len() > OWN_LINES {
        own.pop_front();
    }
    let mut sent = send_to(&session, group, text, &key).await;
    let session = match &sent {
        Err(status) if status.code() == Code::Unauthenticated => {
            // The remembered session was ended elsewhere (a password change or recovery ends
            // every other session): check this line's password afresh, so an old one is
            // refused now.
            shared.logins.forget(&credentials.name, &session);
            let fresh = authenticate(shared, conns, &credentials, peer).await?;
            sent = send_to(&fresh, group, text, &key).await;
            fresh
        }
        _ => session,
    };
    // The lobby is gone or the user is no longer in it: join it as it is now, send again.
    if let Err(status) = &sent
        && refusal(status) == Refusal::NotInLobby
    {
        tracing::warn!(%status, "lobby line refused; rejoining the lobby");
        sent = match shared.lobby.rejoin(&session).await {
            Ok(group) => send_to(&session, group, text, &key).await,
            Err(status) => Err(status),
        };
    }
    drop(credentials);
    if let Err(status) = sent {
        tracing::warn!(%status, "lobby line not sent");
        conns.counters.error("line");
    }
    Some(session)
}

/// The session of the line's sender, or `None` (logged, counted) when the line is refused.
async fn authenticate(
    shared: &Shared,
    conns: &Connections,
    credentials: &Credentials,
    peer: SocketAddr,
) -> Option<Arc<UserSession>> {
    match shared
        .logins
        .authenticate(
            &credentials.name,
            &credentials.password,
            peer,
            &shared.backend.for_client(peer.ip()),
            Recheck::OnRefusal,
        )
        .await
    {
        Ok(session) => Some(session),
        Err(err) => {
            match err {
                AuthError::BadCredentials => tracing::info!("chat line with bad credentials"),
                AuthError::Maintenance => tracing::info!("chat login refused: maintenance"),
                AuthError::Backend(status) => tracing::warn!(%status, "chat login failed"),
            }
            conns.counters.error("line");
            None
        }
    }
}

async fn send_to(session: &UserSession, group: i64, text: &str, key: &str) -> Result<(), Status> {
    let line = SendMessageRequest {
        to: Some(send_message_request::To::ToGroupId(group)),
        kind: MessageKind::Text.into(),
        text: text.to_owned(),
        client_message_id: key.to_owned(),
        ..Default::default()
    };
    session
        .call(line, |backend, request| async move {
            backend.messaging().send_message(request).await
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod size_tests;
