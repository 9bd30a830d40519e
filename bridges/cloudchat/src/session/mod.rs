//! One client: requests become canonical calls made as the logged-in user; while a WebSocket
//! is bound to a user, that user's events become the protocol's pushes.
//!
//! This module is the connection (its login, its socket, the dispatch); the commands live in
//! one module per area, each reading as legacy command → canonical call → legacy reply:
//! [`account`] (logins, registration, profile), [`contacts`] (contacts, searches, friend
//! requests), [`chat`] (messages and files), [`pushes`] (events as pushes), and
//! [`refusals`], the one table from canonical error reasons to failure texts.

mod account;
mod chat;
mod contacts;
mod pushes;
mod refusals;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_kit::{
    Backend, Connections, EventStream, Handshake, Live, OnClose, UserSession, end_login, next_event,
};
use rosetta_proto::{account::v1::search_users_request::Query, common::v1::PageRequest};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    Message as WsMessage,
    protocol::{CloseFrame, frame::coding::CloseCode},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{self, DecodeError, NewFriendRequest, Request},
    upgrade::WebSocket,
};

/// Pushes from other connections (an HTTP accept's CONTACT_ADDED) waiting for a slow client.
const PUSH_QUEUE: usize = 256;
/// Page size for the listings that the protocol returns whole.
const PAGE: u32 = 500;
/// At most this many pages of one listing (contacts, requests, history) per reply.
const MAX_PAGES: usize = 20;
const DEFAULT_AVATAR: &str = "default.png";
/// How long a login waits for its event stream to be live before answering anyway: well under
/// the Angular client's 5 s login timeout. A later stream loses nothing that happens after it
/// registered with the service, and its reopenings resume after the last event seen.
const LIVE_PATIENCE: Duration = Duration::from_secs(3);
/// Longest wait for one frame to be written: a client that does not read is disconnected
/// instead of holding its connection (and the pushes queued behind the frame) forever. Long
/// enough for a history of many MiB on a slow link.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

const NOT_LOGGED_IN: &str = "请先登录";
const NOT_YOU: &str = "用户身份不符";
/// The failure text of a login over HTTP while HTTP sessions are off.
const HTTP_OFF: &str = "服务器未开启 HTTP 登录";

/// A frame to send, with its type name for the counters.
pub(crate) type Out = (&'static str, String);
/// A push queued for a WebSocket. Boxed: a queue allocates its first block of slots when it
/// is made, and every held WebSocket has one.
type Push = Box<Out>;

/// A command's replies, or the failure text of its type's failure reply.
type Replies = Result<Vec<Out>, &'static str>;

pub(crate) enum Outcome {
    /// Not a message of this protocol: no reply on the WebSocket, 400 on HTTP.
    Illegal,
    Replies(Vec<Out>),
}

/// Where the pushes of each user's bound WebSockets on this instance go: a reply meant for
/// the user's WebSocket to a request that came over HTTP (CONTACT_ADDED after an HTTP accept).
pub(crate) type Sockets = Mutex<HashMap<i64, Vec<mpsc::Sender<Push>>>>;

/// Who a connection acts for.
enum Login {
    /// Nobody: a WebSocket before its login (or after LOGOUT), and every HTTP request, which
    /// acts as the login its address opened, looked up per request.
    Anonymous,
    /// A WebSocket bound to a user: their session, and their events as its pushes.
    Bound(Box<Bound>),
}

struct Bound {
    session: Arc<UserSession>,
    proof: Proof,
    events: EventStream,
    /// Counted among the user's live connections here: the last one to end shows them
    /// offline (the kit's count, which also holds a new login back while that is under way).
    live: Live,
}

/// What shows that a connection's requests come from its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// A password or token given on this WebSocket.
    Credentials,
    /// Only the client's address: an HTTP request, or a WebSocket bound with HDL_INFO to an
    /// HTTP login of its address. Anybody behind that address could send the request, so it
    /// may act in the user's conversations but never change who the user is.
    Address,
}

/// A client connection (a WebSocket, or one HTTP request).
pub(crate) struct Conn {
    shared: Arc<Shared>,
    /// The services, acting for this client's address.
    backend: Backend,
    peer: IpAddr,
    /// Where pushes from other connections come in; `None` for HTTP.
    pushes: Option<mpsc::Sender<Push>>,
    login: Login,
    /// A WebSocket's: marked when it logs in, so the handshake timeout no longer applies.
    handshake: Option<Handshake>,
}

/// Why a WebSocket's service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed it, or stopped reading.
    Closed,
    /// The bridge is shutting down.
    Shutdown,
    /// The bound user's session was ended elsewhere (password change, logout, deletion).
    Revoked,
}

/// Serves one WebSocket until it closes or the bridge shuts down.
pub(crate) async fn websocket(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    peer: IpAddr,
    conns: Connections,
) {
    let (push_tx, mut push_rx) = mpsc::channel::<Push>(PUSH_QUEUE);
    let mut conn = Conn {
        backend: shared.backend.for_client(peer),
        shared,
        peer,
        pushes: Some(push_tx),
        login: Login::Anonymous,
        handshake: Some(conns.handshake),
    };
    let end = Box::pin(conn.serve(&mut socket, &mut push_rx, &conns.closing)).await;
    if end == End::Revoked {
        // The protocol has no message for it: the login ends and the socket is closed with a
        // close frame saying why, so the client does not go on talking to a dead login.
        conn.abandon();
        let frame = CloseFrame {
            code: CloseCode::Policy,
            reason: "session ended".into(),
        };
        write(&mut socket, WsMessage::Close(Some(frame))).await;
    }
    Box::pin(conn.unbind(OnClose::KeepSession)).await;
}

/// Writes one frame within [`WRITE_DEADLINE`]; false when the connection is to be dropped.
async fn write(socket: &mut WebSocket, frame: WsMessage) -> bool {
    match tokio::time::timeout(WRITE_DEADLINE, socket.send(frame)).await {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            tracing::debug!(%err, "write failed");
            false
        }
        Err(_) => {
            tracing::info!("client not reading within the write deadline; disconnected");
            false
        }
    }
}

/// `work`, or `None` when the bridge shuts down first: a handler waiting on a slow service
/// must not hold the connection past the shutdown.
async fn interruptible<T>(closing: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        () = closing.cancelled() => None,
        out = work => Some(out),
    }
}

impl Conn {
    /// The context of one HTTP request from `peer`.
    pub(crate) fn http(shared: Arc<Shared>, peer: IpAddr) -> Self {
        Self {
            backend: shared.backend.for_client(peer),
            shared,
            peer,
            pushes: None,
            login: Login::Anonymous,
            handshake: None,
        }
    }

    /// The WebSocket's loop: the client's frames, the bound user's events and pushes queued by
    /// other connections, each answered with frames written within their deadline.
    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        push_rx: &mut mpsc::Receiver<Push>,
        closing: &CancellationToken,
    ) -> End {
        let counters = self.shared.counters;
        loop {
            let outs = tokio::select! {
                () = closing.cancelled() => return End::Shutdown,
                Some(out) = push_rx.recv() => vec![*out],
                event = next_event(self.events()) => {
                    let Some(event) = event else {
                        return End::Revoked;
                    };
                    match interruptible(closing, Box::pin(self.pushes_of(event.kind))).await {
                        Some(outs) => outs,
                        None => return End::Shutdown,
                    }
                }
                received = socket.next() => match received {
                    // Boxed so that the handlers' state is allocated only while they run,
                    // not kept in every idle connection's task.
                    Some(Ok(WsMessage::Text(text))) => {
                        match interruptible(closing, Box::pin(self.on_message(text.as_str()))).await {
                            Some(Outcome::Replies(replies)) => replies,
                            Some(Outcome::Illegal) => continue,
                            None => return End::Shutdown,
                        }
                    }
                    // The clients send text only; a binary frame is not a message of the protocol.
                    Some(Ok(WsMessage::Binary(_))) => {
                        counters.error("BINARY");
                        continue;
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return End::Closed,
                },
            };
            for (kind, text) in outs {
                counters.frame_out(kind);
                if !write(socket, WsMessage::Text(text.into())).await {
                    return End::Closed;
                }
            }
        }
    }

    /// The bound user's event stream, if a user is bound.
    fn events(&mut self) -> Option<&mut EventStream> {
        match &mut self.login {
            Login::Bound(bound) => Some(&mut bound.events),
            Login::Anonymous => None,
        }
    }

    /// Handles one message (a text frame or an HTTP body).
    pub(crate) async fn on_message(&mut self, text: &str) -> Outcome {
        let counters = self.shared.counters;
        let request = match codec::decode(text) {
            Ok(request) => request,
            Err(DecodeError::BadField { kind, field }) => {
                counters.frame_in(kind);
                tracing::debug!(command = kind, field, "bad field");
                // A failed send still echoes its tempId, which the client matches it by.
                let temp_id = match kind {
                    "SEND_MESSAGE" | "SEND_FILE" | "SEND_IMAGE" => codec::temp_id_of(text),
                    _ => String::new(),
                };
                return Outcome::Replies(self.failure(kind, &temp_id, "消息格式错误"));
            }
            Err(err) => {
                counters.error("ILLEGAL_MSG");
                tracing::debug!(?err, "illegal message");
                return Outcome::Illegal;
            }
        };
        let kind = request.kind();
        counters.frame_in(kind);
        // The key the failure reply echoes (a send's tempId), whichever way the request fails.
        let echo = request.echo().to_owned();
        let span = tracing::info_span!("frame", command = kind);
        let replies = match self.route(request).instrument(span).await {
            Ok(replies) => replies,
            Err(error) => self.failure(kind, &echo, error),
        };
        Outcome::Replies(replies)
    }

    /// The failure reply of a request of type `kind` (none for types without one).
    fn failure(&self, kind: &'static str, echo: &str, error: &str) -> Vec<Out> {
        self.shared.counters.error(kind);
        codec::failure_kind(kind)
            .map(|failure| vec![(failure, failure_reply(failure, echo, error))])
            .unwrap_or_default()
    }

    /// The commands that need no login, then the others as the user they come from.
    async fn route(&mut self, request: Request) -> Replies {
        let http = self.pushes.is_none();
        match request {
            // Without HTTP sessions an HTTP login could not be used by anything after it.
            Request::Login { .. } | Request::LoginByToken { .. } | Request::Register { .. }
                if http && !self.shared.http.enabled() =>
            {
                Err(HTTP_OFF)
            }
            Request::Login { username, password } => self.login(username, password).await,
            Request::LoginByToken { username, token } => self.login_by_token(username, token).await,
            Request::Register {
                username,
                password,
                email,
            } => self.register(username, password, email).await,
            Request::HdlInfo { user_id } => Ok(self.hdl_info(user_id).await),
            Request::AcceptFriendRequest { id } if http => self.answer_over_http(id, true).await,
            Request::RefuseFriendRequest { id } if http => self.answer_over_http(id, false).await,
            Request::SearchById { user_id } => Ok(self.search(Query::UserId(user_id)).await),
            Request::SearchByName { username } => {
                let name = username.trim().to_owned();
                Ok(self.search(Query::Name(name)).await)
            }
            other => {
                let actor = other.actor();
                let session = self.session_for(actor).ok_or(NOT_LOGGED_IN)?;
                if actor.is_some_and(|id| id != session.user_id()) {
                    return Err(NOT_YOU);
                }
                self.act(&session, other).await
            }
        }
    }

    /// The commands of a logged-in user (whose ids in the payload were checked), by area.
    async fn act(&mut self, session: &Arc<UserSession>, request: Request) -> Replies {
        match request {
            Request::UpdateProfile {
                username,
                email,
                avatar,
                ..
            } => account::update_profile(session, self.proof(), username, email, avatar).await,
            Request::Logout { .. } => {
                self.logout(session).await;
                Ok(Vec::new())
            }
            Request::LoadContacts { .. } => contacts::load(session).await,
            Request::LoadFriendRequests { .. } => contacts::friend_requests(session).await,
            Request::AddFriendRequest(NewFriendRequest { target_id, .. })
            | Request::AddContact { target_id, .. } => contacts::ask(session, target_id).await,
            Request::AcceptFriendRequest { id } => contacts::answer(session, id, true).await,
            Request::RefuseFriendRequest { id } => contacts::answer(session, id, false).await,
            Request::DeleteContact { target_id, .. } => contacts::delete(session, target_id).await,
            Request::LoadMessages { target_id, .. } => chat::load(session, target_id).await,
            Request::SendMessage {
                temp_id,
                receiver_id,
                content,
                ..
            } => chat::send_text(session, temp_id, receiver_id, content).await,
            Request::SendFile {
                temp_id,
                receiver_id,
                name,
                content,
                image,
                ..
            } => chat::send_file(session, temp_id, receiver_id, name, content, image).await,
            Request::UploadFile { path, data } => chat::upload_file(session, path, data).await,
            Request::MarkRead { target_id, .. } => chat::mark_read(session, target_id).await,
            Request::ClearMessages { user_id, target_id } => {
                chat::clear(session, user_id, target_id).await
            }
            // Handled before a session is needed.
            Request::Login { .. }
            | Request::LoginByToken { .. }
            | Request::Register { .. }
            | Request::SearchById { .. }
            | Request::SearchByName { .. }
            | Request::HdlInfo { .. } => Ok(Vec::new()),
        }
    }

    /// The session acting for this request: the WebSocket's bound user, or for HTTP the
    /// session this address opened for the payload's user.
    fn session_for(&self, actor: Option<i64>) -> Option<Arc<UserSession>> {
        match &self.login {
            Login::Bound(bound) => Some(bound.session.clone()),
            Login::Anonymous if self.pushes.is_none() => self.shared.http.recall(self.peer, actor),
            Login::Anonymous => None,
        }
    }

    /// What shows that this request comes from the user of `session_for`.
    fn proof(&self) -> Proof {
        match &self.login {
            Login::Bound(bound) => bound.proof,
            Login::Anonymous => Proof::Address,
        }
    }

    /// Binds this WebSocket to `session` and opens its event stream. Returns once the stream
    /// is live, so that a message sent to the user right after the reply to their login is
    /// pushed too, or after `LIVE_PATIENCE` (the stream keeps coming up by itself), so that
    /// the login is answered before the client gives up.
    async fn bind(&mut self, session: Arc<UserSession>, proof: Proof) -> Result<(), tonic::Status> {
        let Some(pushes) = self.pushes.clone() else {
            return Ok(());
        };
        // Counted before the old binding is released: a re-login of the same user on this
        // socket must not sign them out.
        let live = self.shared.online.enter(session.user_id()).await;
        self.unbind(OnClose::KeepSession).await;
        let events = EventStream::open(session.clone(), LIVE_PATIENCE).await?;
        socket_bound(&self.shared, session.user_id(), pushes);
        self.login = Login::Bound(Box::new(Bound {
            session,
            proof,
            events,
            live,
        }));
        if let Some(handshake) = &self.handshake {
            handshake.done();
        }
        Ok(())
    }

    /// Ends this WebSocket's login; the user's last bound socket on this instance going away
    /// shows them offline now rather than when their presence times out.
    async fn unbind(&mut self, on_close: OnClose) {
        let Login::Bound(bound) = std::mem::replace(&mut self.login, Login::Anonymous) else {
            return;
        };
        let Bound {
            session,
            events,
            live,
            ..
        } = *bound;
        // The stream goes first, so that no reopening shows the user online again.
        drop(events);
        if let Some(pushes) = &self.pushes {
            socket_unbound(&self.shared, session.user_id(), pushes);
        }
        end_login(live, &session, on_close).await;
    }

    /// Drops a login whose session was revoked: nothing can be called as the user any more.
    /// An HTTP login it was bound to (HDL_INFO) was the same session, and is forgotten too.
    fn abandon(&mut self) {
        let Login::Bound(bound) = std::mem::replace(&mut self.login, Login::Anonymous) else {
            return;
        };
        let user = bound.session.user_id();
        if let Some(pushes) = &self.pushes {
            socket_unbound(&self.shared, user, pushes);
        }
        if bound.proof == Proof::Address {
            self.shared.http.forget(self.peer, user);
        }
    }

    /// What the bound user's event shows them.
    async fn pushes_of(
        &self,
        event: Option<rosetta_proto::messaging::v1::event::Kind>,
    ) -> Vec<Out> {
        match &self.login {
            Login::Bound(bound) => pushes::of(&bound.session, event).await,
            Login::Anonymous => Vec::new(),
        }
    }
}

fn reply(kind: &'static str, payload: Value) -> Out {
    (kind, codec::message(kind, payload))
}

/// A failure reply; MESSAGE_SEND_FAILED and FILE_UPLOADED_FAILED carry their key first.
fn failure_reply(failure: &'static str, echo: &str, error: &str) -> String {
    match failure {
        "MESSAGE_SEND_FAILED" => codec::message(failure, json!({"tempId": echo, "error": error})),
        "FILE_UPLOADED_FAILED" => {
            codec::message(failure, json!({"filePath": echo, "error": error}))
        }
        _ => codec::failure(failure, error),
    }
}

fn avatar_of(user: &rosetta_proto::account::v1::User) -> &str {
    if user.avatar.is_empty() {
        DEFAULT_AVATAR
    } else {
        &user.avatar
    }
}

fn page(token: &str) -> PageRequest {
    PageRequest {
        page_size: PAGE,
        page_token: token.to_owned(),
    }
}

/// Lists a WebSocket's push queue under the user it is bound to.
fn socket_bound(shared: &Shared, user: i64, pushes: mpsc::Sender<Push>) {
    if let Ok(mut sockets) = shared.sockets.lock() {
        sockets.entry(user).or_default().push(pushes);
    }
}

/// Takes a WebSocket's push queue off its user's list.
fn socket_unbound(shared: &Shared, user: i64, pushes: &mpsc::Sender<Push>) {
    if let Ok(mut sockets) = shared.sockets.lock()
        && let Some(list) = sockets.get_mut(&user)
    {
        list.retain(|p| !p.same_channel(pushes));
        if list.is_empty() {
            sockets.remove(&user);
        }
    }
}

/// Queues `out` on every WebSocket bound to `user` on this instance; a socket whose queue is
/// full (a client not reading) misses it rather than holding up the HTTP reply.
fn post_to_sockets(shared: &Shared, user: i64, out: &Out) {
    let Ok(sockets) = shared.sockets.lock() else {
        return;
    };
    for pushes in sockets.get(&user).into_iter().flatten() {
        if pushes.try_send(Box::new(out.clone())).is_err() {
            tracing::debug!(user, kind = out.0, "push queue full or closed");
        }
    }
}
