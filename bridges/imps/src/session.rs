//! One IMPS connection: frames in, canonical calls out; the logged-in user's `Subscribe` events
//! back as the client's pushes (imps.md §3, §4, §6).

use std::{
    collections::{HashMap, HashSet},
    future::pending,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::BytesMut;
use futures::StreamExt as _;
use rosetta_bridge_kit::{Backend, Connections, Counters, UserSession, settings::ImpsSettings};
use rosetta_proto::{
    account::v1::{
        Gender, GetProfilesRequest, LoginRequest, LookupUserRequest, PasswordScheme,
        RegisterRequest, User, login_request::Identifier,
    },
    common::v1::{ConversationRef, Location, PageRequest, UserRef, conversation_ref, user_ref},
    files::v1::{
        DownloadRequest, UploadMetadata, UploadRequest, Visibility, download_response,
        upload_request,
    },
    messaging::v1::{
        CallAnswer, CallInvite, CallMedia, Event, HeartbeatRequest, Message, MessageKind,
        SendMessageRequest, SendSignalRequest, SetPresenceRequest, SubscribeRequest,
        SubscribeResponse, event::Kind, send_message_request, send_signal_request, signal,
        subscribe_response::Item,
    },
    social::v1::{
        Direction, FriendRequest, ListContactsRequest, ListFriendRequestsRequest, PresenceStatus,
        RequestState, RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request,
    },
};
use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpStream, tcp::OwnedWriteHalf},
    time::Instant,
};
use tokio_util::{
    codec::{Encoder as _, FramedRead},
    sync::CancellationToken,
};
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::{
    codec::{
        AUDIO_CHUNK, AUDIO_END, ClientMessage, CodecError, Fix, Frame, FrameCodec, Friend, HIDE,
        MAX_FRAME, OFFLINE, ONLINE, ServerMessage, cmd, error,
    },
    names::{alias_id, display_name},
};

mod backlog;

/// Voice clip bytes buffered per connection (all clips in progress together, friend names
/// included): about a minute of the client's 8 kHz 16-bit audio.
const MAX_CLIP_BYTES: usize = 1 << 20;
/// Clips in progress per connection: the real client ends each clip with `KO` before the next.
const MAX_CLIPS: usize = 4;
/// Largest stored clip pushed to a client.
const MAX_DOWNLOAD: usize = 4 << 20;
/// Contacts read per ListContacts page, and pages read at most.
const CONTACT_PAGE: u32 = 500;
const MAX_CONTACT_PAGES: usize = 20;
/// Initial read buffer of a connection.
const READ_BUFFER: usize = 1024;
/// How long a login waits for its event stream to go live: well under the 10 s after which
/// the client gives up on S_LOGIN_RSP (imps.md §4.2). A stream slower than that still comes
/// up and delivers, only the reply does not wait for it.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(3);
/// How stored clips are labelled in the files service.
const CLIP_TYPE: &str = "audio/pcm;rate=8000;channels=1;bits=16;endianness=little";

/// What all connections of one bridge share.
pub struct Shared {
    backend: Backend,
    heartbeat_timeout: Duration,
    idle_close: Duration,
    /// The logged-in connection of each user on this bridge, so that a new login kicks the old
    /// one (error 7).
    online: Mutex<HashMap<i64, (u64, CancellationToken)>>,
    next_conn: AtomicU64,
}

impl Shared {
    pub fn new(backend: Backend, settings: &ImpsSettings) -> Self {
        Self {
            backend,
            heartbeat_timeout: Duration::from_millis(settings.heartbeat_timeout_ms.max(1)),
            idle_close: Duration::from_millis(settings.idle_close_ms.max(1)),
            online: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Binds `user` to connection `conn`; the previous connection of the user is told to go.
    fn bind(&self, user: i64, conn: u64, kick: CancellationToken) {
        let old = self
            .online
            .lock()
            .map(|mut online| online.insert(user, (conn, kick)))
            .ok()
            .flatten();
        if let Some((_, old)) = old {
            old.cancel();
        }
    }

    fn unbind(&self, user: i64, conn: u64) {
        if let Ok(mut online) = self.online.lock()
            && online.get(&user).is_some_and(|(c, _)| *c == conn)
        {
            online.remove(&user);
        }
    }
}

/// Why a connection ends.
enum Close {
    /// The client broke the protocol or the socket failed.
    Broken,
}

struct LoggedIn {
    session: UserSession,
    /// The name the client knows itself by; every frame must start with it.
    name: String,
    kick: CancellationToken,
    events: Option<Streaming<SubscribeResponse>>,
    /// The newest event of the user's log seen here: a broken stream reopens after it, so
    /// nothing sent while it was down is lost.
    after_seq: Option<u64>,
    last_heartbeat: Instant,
    /// Declared offline for want of heartbeats; the next heartbeat brings the user back.
    lapsed: bool,
    names: HashMap<i64, String>,
    /// Last status pushed per friend, so that repeated presence events are not re-sent.
    shown: HashMap<i64, u8>,
    /// Voice clips being received.
    clips: Clips,
    /// Friend requests already pushed: one can arrive live while the pending ones are listed.
    asked: HashSet<i64>,
    /// Messages delivered from the login's backlog, not to be pushed again live.
    delivered: backlog::Delivered,
}

struct Conn {
    shared: Arc<Shared>,
    /// The services, acting for this client's address.
    backend: Backend,
    id: u64,
    peer: SocketAddr,
    counters: Counters,
    /// Written frame by frame: a `FramedWrite` would keep an 8 KiB buffer per connection.
    write: OwnedWriteHalf,
    state: Option<LoggedIn>,
    /// When a frame was last read or written, for the idle close.
    last_io: Instant,
}

/// Serves one client until it leaves, breaks the protocol, is kicked or the bridge stops.
pub async fn run(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, conns: Connections) {
    let (read, write) = stream.into_split();
    // Most connections idle for hours: the read buffer starts small (frames are rarely over a
    // few hundred bytes) and grows for the ones that are not.
    let mut frames = FramedRead::with_capacity(read, FrameCodec, READ_BUFFER);
    let mut conn = Conn {
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        backend: shared.backend.for_client(peer.ip()),
        shared,
        peer,
        counters: conns.counters,
        write,
        state: None,
        last_io: Instant::now(),
    };
    let mut kicked = false;
    loop {
        let kick = conn.state.as_ref().map(|s| s.kick.clone());
        let deadline = conn
            .state
            .as_ref()
            .filter(|s| !s.lapsed)
            .and_then(|s| s.last_heartbeat.checked_add(conn.shared.heartbeat_timeout));
        let events = conn.state.as_mut().and_then(|s| s.events.as_mut());
        tokio::select! {
            () = conns.closing.cancelled() => break,
            () = cancelled(kick) => {
                kicked = true;
                break;
            }
            () = tokio::time::sleep_until(conn.last_io + conn.shared.idle_close) => {
                tracing::info!("nothing read or written for too long; closing");
                break;
            }
            frame = frames.next() => match frame {
                Some(Ok(frame)) => {
                    conn.last_io = Instant::now();
                    // Handlers are boxed so that their state is allocated only while they
                    // run, not kept in every idle connection's task.
                    if Box::pin(conn.frame(frame)).await.is_err() {
                        break;
                    }
                }
                Some(Err(err)) => {
                    conn.counters.error("malformed");
                    tracing::info!(%err, "closing on a malformed frame");
                    break;
                }
                None => break,
            },
            item = next_event(events) => {
                if Box::pin(conn.event(item)).await.is_err() {
                    break;
                }
            }
            () = sleep_until(deadline) => Box::pin(conn.lapse()).await,
        }
    }
    Box::pin(conn.close(kicked)).await;
}

async fn cancelled(token: Option<CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}

async fn next_event(
    events: Option<&mut Streaming<SubscribeResponse>>,
) -> Option<Result<SubscribeResponse, Status>> {
    match events {
        Some(events) => events.message().await.transpose(),
        None => pending().await,
    }
}

/// Whether a refused registration may have been refused for its e-mail alone (a bad user name
/// is refused again without it).
fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Server local time as the client prints it.
fn local_time(ms: i64) -> String {
    use chrono::TimeZone as _;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Shrinks a push until the client's 10,240-byte buffer can hold it: long texts (other
/// protocols allow 16 KiB) are cut, long friend lists lose their last entries.
fn fit(mut message: ServerMessage) -> ServerMessage {
    loop {
        let over = message.encode().wire_len().saturating_sub(MAX_FRAME);
        if over == 0 {
            return message;
        }
        match &mut message {
            ServerMessage::Friends(friends) if !friends.is_empty() => {
                friends.pop();
            }
            ServerMessage::Message { text, .. } if !text.is_empty() => {
                let keep = text.chars().count().saturating_sub(over.div_ceil(2).max(1));
                *text = text.chars().take(keep).collect();
            }
            _ => return message,
        }
    }
}

fn port(port: i32) -> u32 {
    u32::try_from(port)
        .ok()
        .filter(|p| *p <= 65_535)
        .unwrap_or(0)
}

fn wire_port(port: u32) -> i32 {
    i32::try_from(port).unwrap_or(0)
}

/// The first of two addresses that is set.
fn either(first: &str, second: &str) -> String {
    if first.is_empty() { second } else { first }.to_owned()
}

impl Conn {
    fn backend(&self) -> &Backend {
        &self.backend
    }

    async fn send(&mut self, message: ServerMessage) -> Result<(), Close> {
        let frame = fit(message).encode();
        let name = cmd::name(frame.cmd);
        let mut bytes = BytesMut::new();
        let written = match FrameCodec.encode(frame, &mut bytes) {
            Ok(()) => self.write.write_all(&bytes).await.map_err(CodecError::from),
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => {
                self.last_io = Instant::now();
                self.counters.frame_out(name);
                Ok(())
            }
            Err(CodecError::BadLength(len)) => {
                self.counters.error(name);
                tracing::warn!(
                    len,
                    command = name,
                    "push too large for the client, dropped"
                );
                Ok(())
            }
            Err(err) => {
                tracing::debug!(%err, "write failed");
                Err(Close::Broken)
            }
        }
    }

    async fn error(&mut self, code: i32) -> Result<(), Close> {
        self.send(ServerMessage::Error { code, extra: None }).await
    }

    async fn frame(&mut self, frame: Frame) -> Result<(), Close> {
        let name = cmd::name(frame.cmd);
        self.counters.frame_in(name);
        let span = tracing::info_span!("frame", command = name);
        async {
            let message = match ClientMessage::decode(&frame) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    // The client drops commands it does not know; so does the bridge.
                    self.counters.error(name);
                    tracing::debug!(cmd = frame.cmd, "unknown command ignored");
                    return Ok(());
                }
                Err(err) => {
                    self.counters.error(name);
                    tracing::info!(%err, "closing on a malformed body");
                    return Err(Close::Broken);
                }
            };
            self.message(message, name).await
        }
        .instrument(span)
        .await
    }

    async fn message(&mut self, message: ClientMessage, name: &'static str) -> Result<(), Close> {
        use ClientMessage as C;
        match message {
            C::Register {
                user,
                password,
                gender,
                email,
            } => return self.register(user, password, gender, email).await,
            C::Login { user, password } => return self.login(user, password).await,
            _ => {}
        }
        let Some(state) = &self.state else {
            self.counters.error(name);
            return match message {
                // Late traffic of a session that ended: nothing to say.
                C::Heartbeat { .. } | C::Status { .. } => Ok(()),
                _ => self.error(error::NOT_ALLOWED).await,
            };
        };
        let sender = match &message {
            C::Heartbeat { user, .. }
            | C::FriendList { user }
            | C::AddFriend { user, .. }
            | C::AnswerFriend { user, .. }
            | C::SendMessage { user, .. }
            | C::Status { user, .. }
            | C::Audio { user, .. }
            | C::CallInvite { user, .. }
            | C::CallAnswer { user, .. }
            | C::Image { user, .. } => user,
            C::Register { .. } | C::Login { .. } => return Ok(()),
        };
        if *sender != state.name && *sender != state.session.user().username {
            self.counters.error(name);
            tracing::warn!(claimed = %sender, "frame for another user refused");
            return self.error(error::NOT_ALLOWED).await;
        }
        let result = match message {
            C::Heartbeat { fixes, .. } => self.heartbeat(fixes).await,
            C::FriendList { .. } => self.friend_list().await,
            C::AddFriend { friend, .. } => self.add_friend(&friend).await,
            C::AnswerFriend { friend, accept, .. } => self.answer_friend(&friend, accept).await,
            C::SendMessage { friend, text, .. } => self.send_text(&friend, text).await,
            C::Status { status, .. } => self.status(status).await,
            C::Audio { friend, data, .. } => self.audio(friend, data).await,
            C::CallInvite {
                friend,
                video,
                ip,
                port,
                ..
            } => self.call_invite(&friend, video, ip, port).await,
            C::CallAnswer {
                friend,
                video,
                accept,
                ip,
                port,
                ..
            } => self.call_answer(&friend, video, accept, ip, port).await,
            // Dialect A has no images (imps.md §3.11).
            C::Image { .. } => self.error(error::NOT_ALLOWED).await,
            C::Register { .. } | C::Login { .. } => Ok(()),
        };
        if result.is_err() {
            self.counters.error(name);
        }
        result
    }

    async fn register(
        &mut self,
        user: String,
        password: String,
        gender: i32,
        email: String,
    ) -> Result<(), Close> {
        let gender = match gender {
            1 => Gender::Male,
            0 => Gender::Female,
            _ => Gender::Unspecified,
        };
        let request = RegisterRequest {
            username: user,
            email,
            password,
            password_scheme: PasswordScheme::Plain.into(),
            gender: gender.into(),
            ..Default::default()
        };
        match self.backend().register_legacy(request).await {
            Ok(_) => self.send(ServerMessage::Registered).await,
            Err(status) => {
                self.counters.error("C_REGISTER");
                let code = match reason(&status).as_str() {
                    "USERNAME_TAKEN" => error::USER_EXISTS,
                    _ => error::NOT_ALLOWED,
                };
                tracing::info!(%status, "registration refused");
                self.send(ServerMessage::Error {
                    code,
                    extra: Some(0),
                })
                .await
            }
        }
    }

    async fn login(&mut self, user: String, password: String) -> Result<(), Close> {
        if self.state.is_some() {
            self.counters.error("C_LOGIN_REQ");
            return self.error(error::ALREADY_LOGGED_IN).await;
        }
        let attempt = |identifier| LoginRequest {
            identifier: Some(identifier),
            password: password.clone(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "imps".into(),
        };
        let mut result = self
            .backend()
            .login(attempt(Identifier::Username(user.clone())))
            .await;
        if let (Err(_), Some(id)) = (&result, alias_id(&user)) {
            result = self.backend().login(attempt(Identifier::UserId(id))).await;
        }
        let login = match result {
            Ok(login) => login.into_inner(),
            Err(status) => {
                self.counters.error("C_LOGIN_REQ");
                tracing::info!(%status, "login refused");
                return self.error(error::BAD_CREDENTIALS).await;
            }
        };
        let session = UserSession::new(self.backend().clone(), login);
        let me = session.user().clone();
        let name = display_name(&me);
        let kick = CancellationToken::new();
        self.shared.bind(me.id, self.id, kick.clone());
        let mut names = HashMap::new();
        names.insert(me.id, name.clone());
        self.state = Some(LoggedIn {
            session,
            name: name.clone(),
            kick,
            events: None,
            after_seq: None,
            last_heartbeat: Instant::now(),
            lapsed: false,
            names,
            shown: HashMap::new(),
            clips: Clips::default(),
            asked: HashSet::new(),
            delivered: backlog::Delivered::default(),
        });
        // Live before the reply: the client acts on S_LOGIN_RSP at once, and so may its friends.
        self.subscribe().await?;
        self.send(ServerMessage::LoggedIn {
            user: name,
            // As the legacy server, which always sent 0 (imps.md §4.2).
            gender: 0,
            email: me.email.clone(),
        })
        .await?;
        // The client takes S_SEND_MSG at any time after S_LOGIN_RSP.
        self.deliver_backlog().await?;
        self.pending_requests().await
    }

    /// Opens the event stream and waits until it is live; it also makes the user present,
    /// which tells the friends. A reopened stream first replays what the user missed since
    /// the last event seen, and those events are pushed like live ones.
    async fn subscribe(&mut self) -> Result<(), Close> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let after_seq = state.after_seq;
        let stream = match state.session.request(SubscribeRequest { after_seq }).await {
            Ok(request) => self.backend().messaging().subscribe(request).await,
            Err(status) => Err(status),
        };
        let mut stream = match stream {
            Ok(stream) => stream.into_inner(),
            Err(status) => {
                tracing::warn!(%status, "subscribe failed");
                return Ok(());
            }
        };
        let mut missed = Vec::new();
        let caught_up = tokio::time::timeout(SUBSCRIBE_PATIENCE, async {
            loop {
                match stream.message().await {
                    Ok(Some(SubscribeResponse {
                        item: Some(Item::CaughtUp(caught_up)),
                    })) => return Some(caught_up.head_seq),
                    Ok(Some(SubscribeResponse {
                        item: Some(Item::Event(event)),
                    })) => missed.push(event),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return None,
                }
            }
        })
        .await;
        let Some(state) = &mut self.state else {
            return Ok(());
        };
        match caught_up {
            Ok(Some(head)) => state.after_seq = state.after_seq.max(Some(head)),
            _ => tracing::warn!("event stream did not come up"),
        }
        state.events = Some(stream);
        for event in missed {
            self.seen(event.seq);
            self.push(event).await?;
        }
        Ok(())
    }

    /// Moves the resume point past `seq` (0: an event outside the log, e.g. presence).
    fn seen(&mut self, seq: u64) {
        if let Some(state) = &mut self.state
            && seq > 0
        {
            state.after_seq = state.after_seq.max(Some(seq));
        }
    }

    /// Friend requests that arrived while the user was away (the legacy server dropped them).
    async fn pending_requests(&mut self) -> Result<(), Close> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let listed = match state
            .session
            .request(ListFriendRequestsRequest {
                direction: Direction::Incoming.into(),
                include_answered: false,
                page: Some(PageRequest {
                    page_size: 50,
                    page_token: String::new(),
                }),
            })
            .await
        {
            Ok(request) => self.backend().social().list_friend_requests(request).await,
            Err(status) => Err(status),
        };
        let requests = match listed {
            Ok(listed) => listed.into_inner().requests,
            Err(status) => {
                tracing::warn!(%status, "listing friend requests failed");
                return Ok(());
            }
        };
        for request in requests {
            self.push_friend_request(request).await?;
        }
        Ok(())
    }

    async fn push_friend_request(&mut self, request: FriendRequest) -> Result<(), Close> {
        let Some(state) = &mut self.state else {
            return Ok(());
        };
        let Some(from) = request.from.filter(|_| state.asked.insert(request.id)) else {
            return Ok(());
        };
        let from = self.remember(&from);
        self.send(ServerMessage::FriendRequest { from }).await
    }

    fn session(&self) -> Result<&UserSession, Status> {
        self.state
            .as_ref()
            .map(|s| &s.session)
            .ok_or_else(|| Status::unauthenticated("not logged in"))
    }

    fn remember(&mut self, user: &User) -> String {
        let name = display_name(user);
        if let Some(state) = &mut self.state {
            state.names.insert(user.id, name.clone());
        }
        name
    }

    /// The user an IMPS name stands for: a user name, or a `#<id>` alias.
    async fn resolve(&mut self, name: &str) -> Result<User, Status> {
        let lookup = |r| LookupUserRequest {
            user: Some(UserRef { r#ref: Some(r) }),
        };
        let request = self
            .session()?
            .request(lookup(user_ref::Ref::Username(name.to_owned())))
            .await?;
        let found = match self.backend().account().lookup_user(request).await {
            Err(status) if status.code() == Code::NotFound => match alias_id(name) {
                Some(id) => {
                    let request = self
                        .session()?
                        .request(lookup(user_ref::Ref::Id(id)))
                        .await?;
                    self.backend().account().lookup_user(request).await
                }
                None => Err(status),
            },
            other => other,
        }?
        .into_inner();
        self.remember(&found);
        Ok(found)
    }

    /// The IMPS name of user `id`.
    async fn name_of(&mut self, id: i64) -> String {
        if let Some(name) = self.state.as_ref().and_then(|s| s.names.get(&id)) {
            return name.clone();
        }
        let profiles = match self.session() {
            Ok(session) => match session
                .request(GetProfilesRequest { user_ids: vec![id] })
                .await
            {
                Ok(request) => self.backend().account().get_profiles(request).await,
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        };
        match profiles.map(|p| p.into_inner().users.into_iter().next()) {
            Ok(Some(user)) => self.remember(&user),
            Ok(None) => format!("#{id}"),
            Err(status) => {
                tracing::warn!(%status, id, "profile lookup failed");
                format!("#{id}")
            }
        }
    }

    async fn heartbeat(&mut self, fixes: Vec<Fix>) -> Result<(), Close> {
        let location = fixes.last().and_then(|fix| {
            let known = fix.lat_e6.is_finite()
                && fix.lon_e6.is_finite()
                && (fix.lat_e6 != 0.0 || fix.lon_e6 != 0.0);
            known.then(|| Location {
                latitude: fix.lat_e6 / 1e6,
                longitude: fix.lon_e6 / 1e6,
                client_time: fix.time.clone(),
                received_at_ms: 0,
            })
        });
        let Some(state) = &mut self.state else {
            return Ok(());
        };
        state.last_heartbeat = Instant::now();
        state.lapsed = false;
        let sent = match state.session.request(HeartbeatRequest { location }).await {
            Ok(request) => self.backend().messaging().heartbeat(request).await,
            Err(status) => Err(status),
        };
        if let Err(status) = sent {
            tracing::warn!(%status, "heartbeat failed");
        }
        if self.state.as_ref().is_some_and(|s| s.events.is_none()) {
            self.subscribe().await?;
        }
        Ok(())
    }

    /// No heartbeat for the timeout: the user goes offline and the friends are told.
    async fn lapse(&mut self) {
        let Some(state) = &mut self.state else { return };
        state.lapsed = true;
        tracing::info!("no heartbeat within the timeout, user offline");
        self.set_presence(PresenceStatus::Offline).await;
    }

    async fn set_presence(&self, status: PresenceStatus) {
        let Ok(session) = self.session() else { return };
        let sent = match session
            .request(SetPresenceRequest {
                status: status.into(),
            })
            .await
        {
            Ok(request) => self.backend().messaging().set_presence(request).await,
            Err(status) => Err(status),
        };
        if let Err(status) = sent {
            tracing::warn!(%status, "presence update failed");
        }
    }

    async fn friend_list(&mut self) -> Result<(), Close> {
        let mut friends = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_CONTACT_PAGES {
            let page = match self.session() {
                Ok(session) => match session
                    .request(ListContactsRequest {
                        page: Some(PageRequest {
                            page_size: CONTACT_PAGE,
                            page_token: token.clone(),
                        }),
                    })
                    .await
                {
                    Ok(request) => self.backend().social().list_contacts(request).await,
                    Err(status) => Err(status),
                },
                Err(status) => Err(status),
            };
            let page = match page {
                Ok(page) => page.into_inner(),
                Err(status) => {
                    tracing::warn!(%status, "listing contacts failed");
                    // The client keeps its list if no reply comes; an empty one would wipe it.
                    return Ok(());
                }
            };
            for contact in page.contacts {
                let Some(user) = contact.user else { continue };
                let name = self.remember(&user);
                let presence = contact.presence.unwrap_or_default();
                let status = if presence.status == PresenceStatus::Online as i32 {
                    ONLINE
                } else {
                    OFFLINE
                };
                if let Some(state) = &mut self.state {
                    state.shown.insert(user.id, status);
                }
                let location = presence.location.unwrap_or_default();
                friends.push(Friend {
                    name,
                    status,
                    email: contact.email,
                    time: fix_time(&location),
                    // Whole micro-degrees, as the client holds them (an int in GeoPoint).
                    lat_e6: (location.latitude * 1e6).round(),
                    lon_e6: (location.longitude * 1e6).round(),
                });
            }
            token = page.page.map(|p| p.next_page_token).unwrap_or_default();
            if token.is_empty() {
                break;
            }
        }
        self.send(ServerMessage::Friends(friends)).await
    }

    async fn add_friend(&mut self, friend: &str) -> Result<(), Close> {
        // The legacy server never answers C_ADDFRIEND_REQ; failures are only logged.
        let result = async {
            let target = self.resolve(friend).await?;
            let request = self
                .session()?
                .request(SendFriendRequestRequest {
                    to: Some(UserRef {
                        r#ref: Some(user_ref::Ref::Id(target.id)),
                    }),
                    note: String::new(),
                })
                .await?;
            self.backend().social().send_friend_request(request).await
        }
        .await;
        if let Err(status) = result {
            self.counters.error("C_ADDFRIEND_REQ");
            tracing::info!(%status, "friend request not sent");
        }
        Ok(())
    }

    async fn answer_friend(&mut self, friend: &str, accept: bool) -> Result<(), Close> {
        let result = async {
            let requester = self.resolve(friend).await?;
            let request = self
                .session()?
                .request(RespondFriendRequestRequest {
                    request: Some(respond_friend_request_request::Request::FromUserId(
                        requester.id,
                    )),
                    accept,
                })
                .await?;
            self.backend()
                .social()
                .respond_friend_request(request)
                .await
        }
        .await;
        if let Err(status) = result {
            self.counters.error("C_ADDFRIEND_RSP");
            tracing::info!(%status, "friend request answer refused");
        }
        Ok(())
    }

    /// Error code for a failed call about another user.
    fn code_of(status: &Status) -> i32 {
        match (status.code(), reason(status).as_str()) {
            (Code::NotFound, _) => error::NO_SUCH_USER,
            (_, "OFFLINE") => error::OFFLINE,
            _ => error::NOT_ALLOWED,
        }
    }

    async fn send_text(&mut self, friend: &str, text: String) -> Result<(), Close> {
        if text.is_empty() {
            return Ok(());
        }
        let result = async {
            let to = self.resolve(friend).await?;
            self.send_message(to.id, MessageKind::Text, text, String::new())
                .await
        }
        .await;
        self.answer_send(result).await
    }

    async fn send_message(
        &self,
        to: i64,
        kind: MessageKind,
        text: String,
        file_id: String,
    ) -> Result<bool, Status> {
        let request = self
            .session()?
            .request(SendMessageRequest {
                to: Some(send_message_request::To::ToUserId(to)),
                kind: kind.into(),
                text,
                file_id,
                client_message_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            })
            .await?;
        let sent = self.backend().messaging().send_message(request).await?;
        Ok(sent.into_inner().recipient_online)
    }

    /// No acknowledgement on success; error 5 when the recipient is not online.
    async fn answer_send(&mut self, result: Result<bool, Status>) -> Result<(), Close> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) => self.error(error::OFFLINE).await,
            Err(status) => {
                tracing::info!(%status, "message refused");
                self.error(Self::code_of(&status)).await
            }
        }
    }

    async fn status(&mut self, status: u8) -> Result<(), Close> {
        let status = match status {
            ONLINE => PresenceStatus::Online,
            OFFLINE => PresenceStatus::Offline,
            HIDE => PresenceStatus::Invisible,
            _ => return Ok(()),
        };
        self.set_presence(status).await;
        Ok(())
    }

    async fn audio(&mut self, friend: String, data: Vec<u8>) -> Result<(), Close> {
        let Some(state) = &mut self.state else {
            return Ok(());
        };
        if data != AUDIO_END {
            if !state.clips.add(friend, data) {
                self.counters.error("C_AUDIO_REQ");
                tracing::info!("voice clip over the buffer limits, dropped");
            }
            return Ok(());
        }
        let Some(clip) = state.clips.finish(&friend).filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        let result = async {
            let to = self.resolve(&friend).await?;
            let file_id = self.upload_clip(to.id, clip).await?;
            self.send_message(to.id, MessageKind::Audio, String::new(), file_id)
                .await
        }
        .await;
        self.answer_send(result).await
    }

    async fn upload_clip(&self, to: i64, clip: Vec<u8>) -> Result<String, Status> {
        let metadata = UploadMetadata {
            name: "voice.pcm".into(),
            size: clip.len() as u64,
            content_type: CLIP_TYPE.into(),
            folder: String::new(),
            visibility: Visibility::Conversation.into(),
            conversation: Some(ConversationRef {
                r#ref: Some(conversation_ref::Ref::UserId(to)),
            }),
        };
        let parts = vec![
            UploadRequest {
                part: Some(upload_request::Part::Metadata(metadata)),
            },
            UploadRequest {
                part: Some(upload_request::Part::Chunk(clip)),
            },
        ];
        let request = self
            .session()?
            .request(futures::stream::iter(parts))
            .await?;
        Ok(self
            .backend()
            .files()
            .upload(request)
            .await?
            .into_inner()
            .id)
    }

    async fn call_invite(
        &mut self,
        friend: &str,
        video: bool,
        ip: String,
        port_: i32,
    ) -> Result<(), Close> {
        let public_host = self.peer.ip().to_canonical().to_string();
        let result = async {
            let to = self.resolve(friend).await?;
            let invite = CallInvite {
                media: media(video).into(),
                private_host: ip,
                private_port: port(port_),
                public_host,
                // Media flows over UDP on the client's RTP port, not its TCP port.
                public_port: port(port_),
            };
            self.signal(to.id, send_signal_request::Kind::CallInvite(invite))
                .await
        }
        .await;
        self.answer_signal(result).await
    }

    async fn call_answer(
        &mut self,
        friend: &str,
        video: bool,
        accept: bool,
        ip: String,
        port_: i32,
    ) -> Result<(), Close> {
        let public_host = self.peer.ip().to_canonical().to_string();
        let result = async {
            let to = self.resolve(friend).await?;
            let answer = CallAnswer {
                media: media(video).into(),
                accept,
                private_host: ip,
                private_port: port(port_),
                public_host,
                public_port: port(port_),
            };
            self.signal(to.id, send_signal_request::Kind::CallAnswer(answer))
                .await
        }
        .await;
        self.answer_signal(result).await
    }

    async fn signal(&self, to: i64, kind: send_signal_request::Kind) -> Result<(), Status> {
        let request = self
            .session()?
            .request(SendSignalRequest {
                to_user_id: to,
                kind: Some(kind),
            })
            .await?;
        self.backend().messaging().send_signal(request).await?;
        Ok(())
    }

    async fn answer_signal(&mut self, result: Result<(), Status>) -> Result<(), Close> {
        match result {
            Ok(()) => Ok(()),
            Err(status) => {
                tracing::info!(%status, "call signal refused");
                self.error(Self::code_of(&status)).await
            }
        }
    }

    async fn event(
        &mut self,
        item: Option<Result<SubscribeResponse, Status>>,
    ) -> Result<(), Close> {
        let event = match item {
            Some(Ok(SubscribeResponse {
                item: Some(Item::Event(event)),
            })) => event,
            Some(Ok(_)) => return Ok(()),
            ended => {
                if let Some(Err(status)) = ended {
                    tracing::warn!(%status, "event stream failed");
                }
                // Reopened at the next heartbeat.
                if let Some(state) = &mut self.state {
                    state.events = None;
                }
                return Ok(());
            }
        };
        self.seen(event.seq);
        let span = tracing::info_span!("push", seq = event.seq);
        self.push(event).instrument(span).await
    }

    async fn push(&mut self, event: Event) -> Result<(), Close> {
        let Ok(me) = self.session().map(UserSession::user_id) else {
            return Ok(());
        };
        match event.kind {
            Some(Kind::Message(message)) => self.push_message(me, message).await,
            Some(Kind::FriendRequestReceived(request)) => self.push_friend_request(request).await,
            Some(Kind::FriendRequestAnswered(request)) => {
                let (Some(from), Some(to)) = (request.from, request.to) else {
                    return Ok(());
                };
                if from.id != me {
                    return Ok(());
                }
                let from = self.remember(&to);
                let accepted = request.state == RequestState::Accepted as i32;
                self.send(ServerMessage::FriendAnswer { from, accepted })
                    .await
            }
            Some(Kind::PresenceChanged(presence)) if presence.user_id != me => {
                let status = if presence.status == PresenceStatus::Online as i32 {
                    ONLINE
                } else {
                    OFFLINE
                };
                let Some(state) = &mut self.state else {
                    return Ok(());
                };
                if state.shown.insert(presence.user_id, status) == Some(status) {
                    return Ok(());
                }
                let user = self.name_of(presence.user_id).await;
                self.send(ServerMessage::Status { user, status }).await
            }
            Some(Kind::Signal(signal)) => self.push_signal(signal).await,
            _ => Ok(()),
        }
    }

    /// A received message as the client shows it.
    async fn show_message(&mut self, me: i64, message: Message) -> Result<(), Close> {
        use rosetta_proto::messaging::v1::message::To;
        // Dialect A has private chat only; the user's own sends are not echoed.
        if message.sender_id == me || message.to != Some(To::ToUserId(me)) || message.recalled {
            return Ok(());
        }
        let from = self.name_of(message.sender_id).await;
        let time = local_time(message.sent_at_ms);
        let text = match MessageKind::try_from(message.kind) {
            Ok(MessageKind::Text) => message.text,
            Ok(MessageKind::Audio) => return self.push_clip(from, &message.file_id, time).await,
            Ok(MessageKind::Image) => format!("[image] {}", message.text).trim_end().to_owned(),
            Ok(MessageKind::File) => format!("[file] {}", message.text).trim_end().to_owned(),
            _ => return Ok(()),
        };
        self.send(ServerMessage::Message { from, text, time }).await
    }

    /// A stored clip as the legacy server relayed it: 200-byte S_AUDIO_RSP chunks, then "KO".
    async fn push_clip(&mut self, from: String, file_id: &str, time: String) -> Result<(), Close> {
        let clip = match self.download(file_id).await {
            Ok(clip) => clip,
            Err(status) => {
                tracing::warn!(%status, "voice clip download failed");
                return Ok(());
            }
        };
        for chunk in clip.chunks(AUDIO_CHUNK).chain([AUDIO_END]) {
            self.send(ServerMessage::Audio {
                from: from.clone(),
                data: chunk.to_vec(),
                time: time.clone(),
            })
            .await?;
        }
        Ok(())
    }

    async fn download(&self, file_id: &str) -> Result<Vec<u8>, Status> {
        let request = self
            .session()?
            .request(DownloadRequest {
                file_id: file_id.to_owned(),
                offset: 0,
            })
            .await?;
        let mut parts = self.backend().files().download(request).await?.into_inner();
        let mut clip = Vec::new();
        while let Some(part) = parts.message().await? {
            if let Some(download_response::Part::Chunk(chunk)) = part.part {
                if clip.len() + chunk.len() > MAX_DOWNLOAD {
                    return Err(Status::resource_exhausted("voice clip too large"));
                }
                clip.extend(chunk);
            }
        }
        Ok(clip)
    }

    async fn push_signal(
        &mut self,
        signal: rosetta_proto::messaging::v1::Signal,
    ) -> Result<(), Close> {
        let from = self.name_of(signal.from_user_id).await;
        let message = match signal.kind {
            Some(signal::Kind::CallInvite(invite)) if invite.media == CallMedia::Video as i32 => {
                ServerMessage::VideoInvite {
                    from,
                    private_ip: either(&invite.private_host, &invite.public_host),
                    private_port: wire_port(invite.private_port),
                    public_ip: either(&invite.public_host, &invite.private_host),
                    public_port: wire_port(invite.public_port.max(invite.private_port)),
                }
            }
            Some(signal::Kind::CallInvite(invite)) => ServerMessage::CallInvite {
                from,
                ip: either(&invite.private_host, &invite.public_host),
                port: wire_port(invite.private_port.max(invite.public_port)),
            },
            Some(signal::Kind::CallAnswer(answer)) if answer.media == CallMedia::Video as i32 => {
                ServerMessage::VideoAnswer {
                    from,
                    accept: answer.accept,
                    private_ip: either(&answer.private_host, &answer.public_host),
                    private_port: wire_port(answer.private_port),
                    public_ip: either(&answer.public_host, &answer.private_host),
                    public_port: wire_port(answer.public_port.max(answer.private_port)),
                }
            }
            Some(signal::Kind::CallAnswer(answer)) => ServerMessage::CallAnswer {
                from,
                accept: answer.accept,
                ip: either(&answer.private_host, &answer.public_host),
                port: wire_port(answer.private_port.max(answer.public_port)),
            },
            // File offers have no IMPS form.
            _ => return Ok(()),
        };
        self.send(message).await
    }

    /// Ends the connection: a kicked one is told (error 7); otherwise the user goes offline and
    /// the canonical session ends.
    async fn close(mut self, kicked: bool) {
        let Some(state) = self.state.take() else {
            return;
        };
        if kicked {
            let _ = self.error(error::ELSEWHERE).await;
        } else {
            self.shared.unbind(state.session.user_id(), self.id);
            let request = state
                .session
                .request(SetPresenceRequest {
                    status: PresenceStatus::Offline.into(),
                })
                .await;
            if let Ok(request) = request
                && let Err(status) = self.backend().messaging().set_presence(request).await
            {
                tracing::warn!(%status, "presence update at close failed");
            }
        }
        drop(state.events);
        if let Err(status) = state.session.logout().await {
            tracing::debug!(%status, "logout failed");
        }
    }
}

/// Voice clips being received, by friend name, within the per-connection limits: a client
/// cannot grow the bridge's memory by opening clips to ever new names.
#[derive(Default)]
struct Clips {
    by_friend: HashMap<String, Vec<u8>>,
    /// Bytes held: names and data.
    held: usize,
}

impl Clips {
    /// Buffers a chunk; false when the limits refuse it (the friend's clip is then dropped).
    /// Empty chunks are ignored, as the legacy server did (imps.md §3.9).
    fn add(&mut self, friend: String, data: Vec<u8>) -> bool {
        if data.is_empty() {
            return true;
        }
        let fresh = !self.by_friend.contains_key(&friend);
        let cost = data.len() + if fresh { friend.len() } else { 0 };
        if (fresh && self.by_friend.len() >= MAX_CLIPS) || self.held + cost > MAX_CLIP_BYTES {
            self.finish(&friend);
            return false;
        }
        self.held += cost;
        self.by_friend.entry(friend).or_default().extend(data);
        true
    }

    /// Takes the friend's clip out.
    fn finish(&mut self, friend: &str) -> Option<Vec<u8>> {
        let clip = self.by_friend.remove(friend)?;
        self.held -= friend.len() + clip.len();
        Some(clip)
    }
}

fn media(video: bool) -> CallMedia {
    if video {
        CallMedia::Video
    } else {
        CallMedia::Audio
    }
}

/// A friend-list location time: the fix time the friend's phone reported, as the legacy
/// database printed it (`yyyy-MM-dd HH:mm:ss.0`); the server's receive time otherwise; empty
/// when there is no location.
fn fix_time(location: &Location) -> String {
    let client = location.client_time.trim();
    if chrono::NaiveDateTime::parse_from_str(client, "%Y-%m-%d %H:%M:%S").is_ok() {
        format!("{client}.0")
    } else if location.received_at_ms > 0 {
        format!("{}.0", local_time(location.received_at_ms))
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_pushes_are_cut_to_the_client_buffer() {
        let long = ServerMessage::Message {
            from: "alice".into(),
            text: "你".repeat(8000),
            time: "2012-01-14 20:43:12".into(),
        };
        let cut = fit(long);
        let wire = cut.encode().wire_len();
        assert!(wire <= MAX_FRAME && wire > MAX_FRAME - 8, "{wire}");
        let friends = (0..500)
            .map(|i| Friend {
                name: format!("friend{i}"),
                status: ONLINE,
                email: String::new(),
                time: String::new(),
                lat_e6: 0.0,
                lon_e6: 0.0,
            })
            .collect();
        let ServerMessage::Friends(kept) = fit(ServerMessage::Friends(friends)) else {
            panic!("still a friend list");
        };
        assert!(kept.len() > 100 && kept.len() < 500, "{}", kept.len());
    }

    #[test]
    fn voice_clips_stay_within_their_limits() {
        let mut clips = Clips::default();
        // Empty chunks open nothing, whatever the name.
        for i in 0..100 {
            assert!(clips.add(format!("nobody{i}"), Vec::new()));
        }
        assert!(clips.by_friend.is_empty());
        assert_eq!(clips.held, 0);
        // At most MAX_CLIPS at once; finishing one frees its place.
        for i in 0..MAX_CLIPS {
            assert!(clips.add(format!("friend{i}"), vec![1]));
        }
        assert!(!clips.add("one too many".into(), vec![1]));
        assert!(clips.add("friend0".into(), vec![2]));
        assert_eq!(clips.finish("friend0"), Some(vec![1, 2]));
        assert!(clips.add("now there is room".into(), vec![1]));
        // Names count against the byte budget.
        let mut clips = Clips::default();
        let name = "n".repeat(MAX_CLIP_BYTES);
        assert!(!clips.add(name, vec![1]));
        assert_eq!(clips.held, 0);
        assert!(clips.add("bob".into(), vec![0; MAX_CLIP_BYTES - 3]));
        assert!(!clips.add("bob".into(), vec![0]));
        assert_eq!((clips.finish("bob"), clips.held), (None, 0));
    }

    #[test]
    fn fix_times_as_the_legacy_database_printed_them() {
        let mut location = Location {
            client_time: "2012-01-14 20:40:00".into(),
            ..Default::default()
        };
        assert_eq!(fix_time(&location), "2012-01-14 20:40:00.0");
        location.client_time = "garbage".into();
        assert_eq!(fix_time(&location), "");
        location.received_at_ms = 1_000;
        assert!(fix_time(&location).ends_with(".0"));
    }
}
