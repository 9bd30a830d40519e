//! One OurChat connection: the WebSocket upgrade, then text frames ⇄ calls on the canonical
//! services, and while logged in a `Subscribe` stream whose events become pushes.
//!
//! The real client (54660bbd) aborts on any frame it did not ask for (ourchat.md §4.1), so a
//! connection gets pushes (code 0 messages, code 9 new sessions, code 18 errors) only once it
//! has shown it reads them: a login in the document's form (with `time`) or with
//! `"push": true`, any request only the document defines (codes 0, 8, 10, 16), or the
//! `pushes` setting.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_kit::{
    Backend, Connections, Counters, Live, LiveLogins, OnClose, UserSession, end_login,
    settings::OurChatSettings,
};
use rosetta_proto::{
    account::v1::{
        DeleteAccountRequest, GetProfilesRequest, LoginRequest, LookupUserRequest, PasswordScheme,
        RegisterRequest, SendVerificationCodeRequest, User, VerificationChannel,
        VerificationPurpose, login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        Event, MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event,
        message, send_message_request, subscribe_response,
    },
    social::v1::CreateGroupRequest,
};
use serde_json::{Map, Value};
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Error as WsError, Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::codec::{self, DecodeError, LoginType, Request, Target, code};

/// A peer that has not finished the WebSocket handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting for a slow client; when full the subscription waits (backpressure).
const EVENT_QUEUE: usize = 64;
/// How long a login waits for its event stream before replying anyway.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before re-opening a `Subscribe` stream that ended.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// Sender ocids remembered per connection (cleared when full).
const OCID_CACHE: usize = 256;
/// Most members one new-session request may name.
const MAX_MEMBERS: usize = 200;
/// The seed's account-info fields, sent when a request names none.
const ACCOUNT_FIELDS: [&str; 5] = ["ocid", "nickname", "status", "avater", "time"];

type Ws = WebSocketStream<TcpStream>;
/// A frame to send and the command it is counted under.
type Reply = (&'static str, String);

/// Small buffers: connections are many and mostly idle, and frames are capped at
/// [`codec::MAX_FRAME`] (a larger message or frame is refused by the WebSocket layer).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * codec::MAX_FRAME)
        .max_message_size(Some(codec::MAX_FRAME))
        .max_frame_size(Some(codec::MAX_FRAME))
}

/// Serves one accepted TCP connection until the peer leaves or the bridge shuts down.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    backend: Backend,
    settings: OurChatSettings,
    conns: Connections,
    live: LiveLogins,
) {
    // The handshake, the login's end and the frame handlers are boxed so that their state is
    // allocated only while they run, not kept in every idle connection's task.
    let accept = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config()));
    let ws = match Box::pin(tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            tracing::debug!(%err, "WebSocket handshake failed");
            conns.counters.error("handshake");
            return;
        }
        Err(_) => {
            tracing::debug!("WebSocket handshake timed out");
            conns.counters.error("handshake");
            return;
        }
    };
    let mut connection = Connection {
        backend,
        peer,
        counters: conns.counters,
        pushes: settings.pushes,
        live,
        login: None,
        ocids: HashMap::new(),
    };
    connection.serve(ws, &conns.closing).await;
    if let Some(login) = connection.login.take() {
        Box::pin(login.end()).await;
    }
}

struct Connection {
    backend: Backend,
    peer: SocketAddr,
    counters: Counters,
    /// Whether this client reads unsolicited frames.
    pushes: bool,
    /// The users logged in on this bridge instance, counted per connection.
    live: LiveLogins,
    login: Option<LoggedIn>,
    /// user id → ocid, for the `sender` of pushed messages.
    ocids: HashMap<i64, String>,
}

struct LoggedIn {
    session: Arc<UserSession>,
    /// The SHA-256 hex the client logged in with; unregister (16) carries no password, and
    /// DeleteAccount checks one.
    password: String,
    /// Boxed: an event is large, and the queue's first block is allocated per connection.
    events: mpsc::Receiver<Box<Event>>,
    subscription: JoinHandle<()>,
    /// This connection counted among the user's live ones (a field so `end` can move it out).
    live: Option<Live>,
}

impl LoggedIn {
    /// Stops the event stream, shows the user offline if this was their last connection here,
    /// and ends the canonical session (an OurChat close is a logout).
    async fn end(mut self) {
        self.subscription.abort();
        if let Some(live) = self.live.take() {
            end_login(live, &self.session, OnClose::Logout).await;
        }
    }
}

impl Drop for LoggedIn {
    fn drop(&mut self) {
        self.subscription.abort();
    }
}

/// How a request failed: the failure form of its own reply, or an ErrorMsg (18), which only
/// clients that read pushes get.
enum Failure {
    Reply(String),
    ErrorMsg(String),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::ErrorMsg(details(status))
    }
}

enum Step {
    Closing,
    Event(Box<Event>),
    Incoming(Option<Result<Message, WsError>>),
}

impl Connection {
    async fn serve(&mut self, mut ws: Ws, closing: &CancellationToken) {
        loop {
            let step = tokio::select! {
                () = closing.cancelled() => Step::Closing,
                Some(event) = next_event(&mut self.login) => Step::Event(event),
                incoming = ws.next() => Step::Incoming(incoming),
            };
            match step {
                Step::Closing => {
                    close(&mut ws, CloseCode::Away, "server shutting down").await;
                    return;
                }
                Step::Event(event) => {
                    if let Some(reply) = Box::pin(self.push(event)).await
                        && self.send(&mut ws, reply).await.is_err()
                    {
                        return;
                    }
                }
                Step::Incoming(None) => return,
                Step::Incoming(Some(Ok(Message::Text(text)))) => {
                    if let Some(reply) = Box::pin(self.frame(text.as_str())).await
                        && self.send(&mut ws, reply).await.is_err()
                    {
                        return;
                    }
                }
                Step::Incoming(Some(Ok(Message::Binary(_)))) => {
                    self.counters.frame_in("binary");
                    self.counters.error("binary");
                    close(&mut ws, CloseCode::Unsupported, "text frames only").await;
                    return;
                }
                // Pings are answered and close handshakes completed by the WebSocket layer.
                Step::Incoming(Some(Ok(_))) => {}
                Step::Incoming(Some(Err(WsError::Capacity(err)))) => {
                    tracing::debug!(%err, "frame too large");
                    self.counters.frame_in("oversized");
                    self.counters.error("oversized");
                    close(&mut ws, CloseCode::Size, "frame too large").await;
                    return;
                }
                Step::Incoming(Some(Err(err))) => {
                    tracing::debug!(%err, "connection failed");
                    return;
                }
            }
        }
    }

    async fn send(&self, ws: &mut Ws, (command, text): Reply) -> Result<(), WsError> {
        self.counters.frame_out(command);
        ws.send(Message::text(text)).await
    }

    /// Decodes and answers one text frame, in a span of its own.
    async fn frame(&mut self, text: &str) -> Option<Reply> {
        let request = match codec::decode(text) {
            Ok(request) => request,
            Err(err) => return self.refuse(err),
        };
        let command = request.command();
        self.counters.frame_in(command);
        let span = tracing::info_span!("frame", command);
        self.handle(request).instrument(span).await
    }

    /// The answer to a frame that does not decode: the failure form of the request's own
    /// reply where it has one, else an ErrorMsg (18) to clients that read it, else nothing
    /// (the real client would abort on it, ourchat.md §7).
    fn refuse(&mut self, err: DecodeError) -> Option<Reply> {
        let command = match &err {
            DecodeError::BadField { code, .. } => command_of(*code),
            DecodeError::UnknownCode(_) => "unknown",
            DecodeError::NotAFrame | DecodeError::TooLarge => "invalid",
        };
        tracing::debug!(?err, command, "frame refused");
        self.counters.frame_in(command);
        self.counters.error(command);
        match err {
            DecodeError::BadField { code, field } => {
                if codec::is_document_only(code) {
                    self.pushes = true;
                }
                let details = format!("missing or invalid field: {field}");
                match code {
                    code::REGISTER => Some((
                        command,
                        codec::account_reply(code::REGISTER_RESPONSE, 1, None),
                    )),
                    code::LOGIN => {
                        Some((command, codec::account_reply(code::LOGIN_RESPONSE, 1, None)))
                    }
                    code::NEW_SESSION => {
                        Some((command, codec::new_session(None, now_secs(), &details)))
                    }
                    _ => self.error_frame(&details),
                }
            }
            DecodeError::UnknownCode(code) => self.error_frame(&format!("unknown code {code}")),
            DecodeError::NotAFrame => self.error_frame("not a JSON object with an integer code"),
            DecodeError::TooLarge => self.error_frame("frame too large"),
        }
    }

    fn error_frame(&self, details: &str) -> Option<Reply> {
        self.pushes.then(|| ("error", codec::error(details)))
    }

    async fn handle(&mut self, request: Request) -> Option<Reply> {
        let command = request.command();
        if matches!(
            request,
            Request::Text { .. }
                | Request::NewSession { .. }
                | Request::AccountInfo { .. }
                | Request::Unregister
        ) {
            self.pushes = true;
        }
        let outcome = match request {
            Request::ServerStatus => Ok(codec::server_status(0)),
            Request::GenerateVerify { email } => self.generate_verify(email).await,
            Request::Register {
                email,
                password,
                name,
                code,
            } => self.register(email, password, name, code).await,
            Request::Login {
                login_type,
                account,
                password,
                pushes,
            } => self.login(login_type, account, password, pushes).await,
            Request::Text { target, msg } => match self.text(target, msg).await {
                Ok(()) => return None,
                Err(failure) => Err(failure),
            },
            Request::NewSession { members } => self.new_session(members).await,
            Request::AccountInfo { ocid, fields } => self.account_info(ocid, fields).await,
            Request::Unregister => self.unregister().await,
        };
        match outcome {
            Ok(frame) => Some((command, frame)),
            Err(Failure::Reply(frame)) => {
                self.counters.error(command);
                Some((command, frame))
            }
            Err(Failure::ErrorMsg(details)) => {
                self.counters.error(command);
                self.error_frame(&details)
            }
        }
    }

    /// GENERATE_VERIFY (14). With an address, a registration code goes out through the
    /// account service's sender; the real client names none and just gets status 0.
    async fn generate_verify(&self, email: Option<String>) -> Result<String, Failure> {
        let Some(email) = email.filter(|e| !e.is_empty()) else {
            return Ok(codec::verify_status(0));
        };
        let sent = self
            .backend
            .account()
            .send_verification_code(SendVerificationCodeRequest {
                channel: VerificationChannel::Email.into(),
                target: email,
                purpose: VerificationPurpose::Register.into(),
            })
            .await;
        match sent {
            Ok(_) => Ok(codec::verify_status(0)),
            Err(status) => {
                tracing::info!(%status, "verification code not sent");
                Err(Failure::Reply(codec::verify_status(1)))
            }
        }
    }

    async fn register(
        &self,
        email: String,
        password: String,
        name: Option<String>,
        code: Option<String>,
    ) -> Result<String, Failure> {
        // The legacy e-mail column was UNIQUE and stored the box's text as typed, so an empty
        // box is one address, taken once used, whose account no login reaches (text without
        // `@` goes out as an ocid login): "Email Exist", and no account is created.
        if email.trim().is_empty() {
            return Err(Failure::Reply(codec::account_reply(
                code::REGISTER_RESPONSE,
                2,
                None,
            )));
        }
        let nickname = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_nickname(&email));
        let registered = self
            .backend
            .account()
            .register(RegisterRequest {
                email,
                password,
                password_scheme: PasswordScheme::Sha256Hex.into(),
                nickname,
                verification_code: code.unwrap_or_default(),
                ..Default::default()
            })
            .await;
        match registered {
            Ok(reply) => {
                let ocid = reply.into_inner().user.unwrap_or_default().ocid;
                Ok(codec::account_reply(
                    code::REGISTER_RESPONSE,
                    0,
                    Some(&ocid),
                ))
            }
            Err(status) => {
                tracing::info!(%status, "register refused");
                let state = if reason(&status) == "EMAIL_TAKEN" {
                    2
                } else {
                    1
                };
                Err(Failure::Reply(codec::account_reply(
                    code::REGISTER_RESPONSE,
                    state,
                    None,
                )))
            }
        }
    }

    async fn login(
        &mut self,
        login_type: LoginType,
        account: String,
        password: String,
        pushes: bool,
    ) -> Result<String, Failure> {
        let identifier = match login_type {
            LoginType::Email => Identifier::Email(account),
            LoginType::Ocid => Identifier::Ocid(account),
        };
        let answer = self
            .backend
            .login(LoginRequest {
                identifier: Some(identifier),
                password: password.clone(),
                password_scheme: PasswordScheme::Sha256Hex.into(),
                client: format!("bridge-ourchat {}", self.peer),
            })
            .await;
        let login = match answer {
            Ok(login) => login.into_inner(),
            Err(status) => {
                tracing::info!(%status, "login refused");
                let state = match status.code() {
                    Code::Unauthenticated
                    | Code::NotFound
                    | Code::InvalidArgument
                    | Code::ResourceExhausted => 1,
                    _ => 2,
                };
                return Err(Failure::Reply(codec::account_reply(
                    code::LOGIN_RESPONSE,
                    state,
                    None,
                )));
            }
        };
        if let Some(previous) = self.login.take() {
            previous.end().await;
        }
        let session = Arc::new(UserSession::new(self.backend.clone(), login));
        // Counted before Subscribe shows the user online (waits for a sign-out in flight).
        let live = Some(self.live.enter(session.user_id()).await);
        let ocid = session.user().ocid.clone();
        let (stream, after_seq) =
            match tokio::time::timeout(SUBSCRIBE_TIMEOUT, open_live(&session)).await {
                Ok(Ok((stream, head))) => (Some(stream), Some(head)),
                Ok(Err(status)) => {
                    tracing::warn!(%status, "event stream not opened at login; retrying");
                    (None, None)
                }
                Err(_) => {
                    tracing::warn!("event stream not opened at login in time; retrying");
                    (None, None)
                }
            };
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let subscription = tokio::spawn(
            forward(Arc::clone(&session), tx, stream, after_seq)
                .instrument(tracing::Span::current()),
        );
        self.login = Some(LoggedIn {
            session,
            password,
            events,
            subscription,
            live,
        });
        self.pushes |= pushes;
        Ok(codec::account_reply(code::LOGIN_RESPONSE, 0, Some(&ocid)))
    }

    fn session(&self) -> Option<Arc<UserSession>> {
        self.login.as_ref().map(|login| Arc::clone(&login.session))
    }

    /// A text message (0); the protocol has no reply to it, only errors.
    async fn text(&mut self, target: Target, msg: String) -> Result<(), Failure> {
        let session = self.session().ok_or_else(not_logged_in)?;
        let to = match target {
            Target::User(ocid) => {
                send_message_request::To::ToUserId(lookup(&session, ocid).await?.id)
            }
            Target::Group(group) => send_message_request::To::ToGroupId(group),
        };
        let request = session
            .request(SendMessageRequest {
                to: Some(to),
                kind: MessageKind::Text.into(),
                text: msg,
                client_message_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            })
            .await?;
        self.backend.messaging().send_message(request).await?;
        Ok(())
    }

    /// NEW_SESSION (8): a group with the named members (the caller's own ocid may be among
    /// them), replied to in both the seed's and the later document's form.
    async fn new_session(&mut self, members: Vec<String>) -> Result<String, Failure> {
        let failed = |why: &str| Failure::Reply(codec::new_session(None, now_secs(), why));
        let session = self.session().ok_or_else(|| failed("not logged in"))?;
        if members.len() > MAX_MEMBERS {
            return Err(failed("too many members"));
        }
        let me = session.user();
        let mut ids = Vec::new();
        let mut names = vec![display_name(me)];
        for ocid in members {
            if ocid == me.ocid {
                continue;
            }
            let user =
                lookup(&session, ocid.clone())
                    .await
                    .map_err(|status| match status.code() {
                        Code::NotFound => failed(&format!("unknown member {ocid}")),
                        _ => failed(&details(status)),
                    })?;
            if !ids.contains(&user.id) {
                ids.push(user.id);
                names.push(display_name(&user));
            }
        }
        let request = session
            .request(CreateGroupRequest {
                name: session_name(&names),
                member_ids: ids,
                // The client cannot show an invitation: strangers are refused, not invited.
                friends_only: true,
                ..Default::default()
            })
            .await
            .map_err(|status| failed(&details(status)))?;
        let group = self
            .backend
            .social()
            .create_group(request)
            .await
            .map_err(|status| failed(&details(status)))?
            .into_inner();
        Ok(codec::new_session(Some(group.id), now_secs(), ""))
    }

    /// ACCOUNT_INFO (10): the requested fields of the account with that ocid (all of the
    /// seed's when none are named); an unknown ocid gets empty `data`.
    async fn account_info(&mut self, ocid: String, fields: Vec<String>) -> Result<String, Failure> {
        let session = self.session().ok_or_else(not_logged_in)?;
        let user = match lookup(&session, ocid).await {
            Ok(user) => user,
            Err(status) if status.code() == Code::NotFound => {
                return Ok(codec::account_info(now_secs(), Map::new()));
            }
            Err(status) => return Err(status.into()),
        };
        let own = user.id == session.user_id();
        let fields = if fields.is_empty() {
            ACCOUNT_FIELDS.iter().map(|f| (*f).to_owned()).collect()
        } else {
            fields
        };
        let mut data = Map::new();
        for field in fields {
            let value = match field.as_str() {
                "ocid" => Value::from(user.ocid.clone()),
                "nickname" => Value::from(user.nickname.clone()),
                "status" => Value::from(user.signature.clone()),
                "avater" | "avatar" => Value::from(user.avatar.clone()),
                "time" => Value::from(user.created_at_ms / 1000),
                "email" if own => Value::from(session.user().email.clone()),
                _ => continue,
            };
            data.insert(field, value);
        }
        Ok(codec::account_info(now_secs(), data))
    }

    /// UNREGISTER (16): deletes the account with the password of the login.
    async fn unregister(&mut self) -> Result<String, Failure> {
        let Some(login) = self.login.take() else {
            return Err(Failure::Reply(codec::unregister_reply(1)));
        };
        let deleted = async {
            let request = login
                .session
                .request(DeleteAccountRequest {
                    password: login.password.clone(),
                    password_scheme: PasswordScheme::Sha256Hex.into(),
                })
                .await?;
            self.backend.account().delete_account(request).await
        }
        .await;
        match deleted {
            Ok(_) => Ok(codec::unregister_reply(0)),
            Err(status) => {
                tracing::info!(%status, "unregister refused");
                self.login = Some(login);
                Err(Failure::Reply(codec::unregister_reply(1)))
            }
        }
    }

    /// The frame an event becomes for this client, if any: others' messages (0) and being
    /// added to a group by someone else, or joining one by an invitation (9).
    async fn push(&mut self, event: Box<Event>) -> Option<Reply> {
        if !self.pushes {
            return None;
        }
        let session = self.session()?;
        let time = event.at_ms / 1000;
        match event.kind? {
            event::Kind::Message(m) if m.sender_id != session.user_id() && !m.recalled => {
                let target = match m.to? {
                    message::To::ToUserId(_) => Target::User(session.user().ocid.clone()),
                    message::To::ToGroupId(group) => Target::Group(group),
                };
                let from = self.ocid_of(&session, m.sender_id).await;
                let text = if m.text.is_empty() {
                    placeholder(m.kind()).to_owned()
                } else {
                    m.text
                };
                Some((
                    "text",
                    codec::text_push(m.sent_at_ms / 1000, m.id, &from, &target, &text),
                ))
            }
            // An invitation accepted elsewhere (the inviter is the actor).
            event::Kind::MemberJoined(change)
                if change.user_id == session.user_id() && change.actor_id != change.user_id =>
            {
                Some((
                    "new_session",
                    codec::new_session(Some(change.group_id), time, ""),
                ))
            }
            event::Kind::MembersAdded(added)
                if added.user_ids.contains(&session.user_id())
                    && added.actor_id != session.user_id() =>
            {
                Some((
                    "new_session",
                    codec::new_session(Some(added.group_id), time, ""),
                ))
            }
            _ => None,
        }
    }

    /// The ocid of a user id; the decimal id if the profile cannot be read.
    async fn ocid_of(&mut self, session: &UserSession, user_id: i64) -> String {
        if let Some(ocid) = self.ocids.get(&user_id) {
            return ocid.clone();
        }
        let found = async {
            let request = session
                .request(GetProfilesRequest {
                    user_ids: vec![user_id],
                })
                .await?;
            self.backend.account().get_profiles(request).await
        }
        .await;
        match found.map(|r| r.into_inner().users.into_iter().next()) {
            Ok(Some(user)) => {
                if self.ocids.len() >= OCID_CACHE {
                    self.ocids.clear();
                }
                self.ocids.insert(user_id, user.ocid.clone());
                user.ocid
            }
            _ => user_id.to_string(),
        }
    }
}

/// The next event of the logged-in user; never ready while logged out.
async fn next_event(login: &mut Option<LoggedIn>) -> Option<Box<Event>> {
    match login {
        Some(login) => login.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Opens the stream of the user's events from now on; returns once the service has caught
/// up, so nothing that happens after the login reply can be missed.
async fn open_live(session: &UserSession) -> Result<(Streaming<SubscribeResponse>, u64), Status> {
    let request = session
        .request(SubscribeRequest { after_seq: None })
        .await?;
    let mut stream = session
        .backend()
        .messaging()
        .subscribe(request)
        .await?
        .into_inner();
    while let Some(item) = stream.message().await? {
        if let Some(subscribe_response::Item::CaughtUp(caught_up)) = item.item {
            return Ok((stream, caught_up.head_seq));
        }
    }
    Err(Status::unavailable("event stream ended"))
}

/// Forwards the user's events to the connection, re-subscribing after the last event seen
/// when the stream ends, until the connection drops the receiver or the session is revoked.
async fn forward(
    session: Arc<UserSession>,
    tx: mpsc::Sender<Box<Event>>,
    mut stream: Option<Streaming<SubscribeResponse>>,
    mut after_seq: Option<u64>,
) {
    loop {
        let current = match stream.take() {
            Some(current) => Ok(current),
            // Boxed: the task waits on its stream nearly all the time and should only hold
            // what that wait needs.
            None => {
                Box::pin(async {
                    let request = session.request(SubscribeRequest { after_seq }).await?;
                    Ok::<_, Status>(
                        session
                            .backend()
                            .messaging()
                            .subscribe(request)
                            .await?
                            .into_inner(),
                    )
                })
                .await
            }
        };
        match current {
            Ok(mut current) => loop {
                match current.message().await {
                    Ok(Some(item)) => match item.item {
                        Some(subscribe_response::Item::Event(event)) => {
                            if event.seq > 0 {
                                after_seq = Some(event.seq);
                            }
                            if tx.send(Box::new(event)).await.is_err() {
                                return;
                            }
                        }
                        Some(subscribe_response::Item::CaughtUp(caught_up)) => {
                            after_seq = after_seq.or(Some(caught_up.head_seq));
                        }
                        None => {}
                    },
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "event stream failed");
                        break;
                    }
                }
            },
            Err(status) if status.code() == Code::Unauthenticated => {
                tracing::debug!(%status, "session ended; no more events");
                return;
            }
            Err(status) => tracing::debug!(%status, "subscribe failed"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

async fn lookup(session: &UserSession, ocid: String) -> Result<User, Status> {
    let request = session
        .request(LookupUserRequest {
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Ocid(ocid)),
            }),
        })
        .await?;
    Ok(session
        .backend()
        .account()
        .lookup_user(request)
        .await?
        .into_inner())
}

async fn close(ws: &mut Ws, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if let Err(err) = ws.close(Some(frame)).await {
        tracing::debug!(%err, "close failed");
    }
}

fn not_logged_in() -> Failure {
    Failure::ErrorMsg("not logged in".to_owned())
}

fn command_of(code: i64) -> &'static str {
    match code {
        code::TEXT => "text",
        code::REGISTER => "register",
        code::LOGIN => "login",
        code::NEW_SESSION => "new_session",
        code::ACCOUNT_INFO => "account_info",
        _ => "unknown",
    }
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// ErrorMsg text for a failed call: the service's reason and message.
fn details(status: Status) -> String {
    match reason(&status) {
        r if r.is_empty() => status.message().to_owned(),
        r => format!("{r}: {}", status.message()),
    }
}

/// The real client sends no nickname: use the e-mail's local part, at most 15 characters
/// as the original server's `name CHAR(15)`.
fn default_nickname(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    local.chars().take(15).collect()
}

fn display_name(user: &User) -> String {
    if user.nickname.is_empty() {
        user.ocid.clone()
    } else {
        user.nickname.clone()
    }
}

/// A group name from its members' names, within the service's 64 characters.
fn session_name(names: &[String]) -> String {
    let name: String = names.join(", ").chars().take(64).collect();
    if name.trim().is_empty() {
        "OurChat session".to_owned()
    } else {
        name
    }
}

/// Text shown for messages that carry a file (codes 1–3 are not defined yet).
fn placeholder(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Image => "[image]",
        MessageKind::Audio => "[audio]",
        MessageKind::File => "[file]",
        MessageKind::Text | MessageKind::Unspecified => "",
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nickname_defaults_to_the_local_part() {
        assert_eq!(default_nickname("alice@example.com"), "alice");
        assert_eq!(default_nickname("averyverylongname@x.y"), "averyverylongna");
        assert_eq!(default_nickname("no-at-sign"), "no-at-sign");
        assert_eq!(default_nickname("é@x"), "é");
    }

    #[test]
    fn session_names_fit_the_service() {
        assert_eq!(session_name(&["a".into(), "b".into()]), "a, b");
        assert_eq!(session_name(&["x".repeat(100)]).chars().count(), 64);
        assert_eq!(session_name(&[" ".into()]), "OurChat session");
    }
}
