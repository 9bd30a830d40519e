//! One pipe connection: reads are commands, commands become calls on the canonical services,
//! and every reply or push goes through the connection's writer task, which writes each one
//! on its own and keeps the configured gap between them (the protocol has no framing).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rosetta_bridge_kit::{Backend, Connections, Counters, UserSession, settings::PipeSettings};
use rosetta_proto::{
    account::v1::{
        ExchangeLegacyTokenRequest, IssueLegacyTokenRequest, LegacyTokenFormat, LoginRequest,
        LookupUserRequest, PasswordScheme, RecoverPasswordRequest, RegisterRequest, SecurityAnswer,
        UpdateProfileRequest, login_request::Identifier, recover_password_request::Proof,
    },
    common::v1::{PageRequest, UserRef, user_ref},
    messaging::v1::{
        FileOffer, SendMessageRequest, SendSignalRequest, SetPresenceRequest,
        send_message_request::To, send_signal_request,
    },
    social::v1::{
        Applicant, CreateGroupRequest, GetGroupRequest, ListContactsRequest,
        ListFriendRequestsRequest, ListGroupMembersRequest, ListJoinRequestsRequest,
        ListMyGroupsRequest, PresenceStatus, RemoveFriendRequest, RequestJoinGroupRequest,
        RespondFriendRequestRequest, RespondJoinRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request, respond_join_request_request,
    },
};
use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpStream, tcp::OwnedWriteHalf},
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::Instrument as _;

use crate::{
    codec::{self, Auth, Command, ParseError, PendingFriend, PendingJoin, Reply, Request},
    events::{self, Backlog},
};

/// Largest read taken as one command. The real server read up to 1 MiB at once but copied
/// each field into 1 KiB, so real commands are far smaller; a longer write arrives as several
/// reads, each handled (and usually refused) on its own.
pub(crate) const MAX_READ: usize = 64 * 1024;
/// How long the start of a command that looks cut short ([`codec::incomplete`]) waits for
/// its rest: the second half of a long command split by the network follows within a round
/// trip or a retransmission.
const PARTIAL_WAIT: Duration = Duration::from_millis(300);
/// Replies and pushes waiting for the writer; a client that stops reading stalls only itself.
const QUEUE: usize = 64;
/// Page size for the listings behind one reply.
const PAGE: u32 = 500;
/// How long a login waits for its event stream to be live before answering anyway.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);
pub(crate) const PROTOCOL: &str = "pipe";

/// What all connections of one bridge share.
pub(crate) struct Shared {
    backend: Backend,
    write_gap: Duration,
    doc_layout: bool,
    /// uid → the connection of its latest login here and how to tell it that it lost the
    /// user (the real server's online map: pushes go to the latest login only).
    online: Mutex<HashMap<i64, (u64, CancellationToken)>>,
    /// Tokens of closed connections whose sign-out is under way: refused here at once, so
    /// that nobody who sees the user offline can still use the token (the real server
    /// cleared the token before the online flag) while the logout call is in flight.
    retiring: Mutex<Vec<(i64, String)>>,
    next_connection: AtomicU64,
}

impl Shared {
    pub(crate) fn new(backend: Backend, settings: &PipeSettings) -> Self {
        Self {
            backend,
            write_gap: Duration::from_millis(settings.write_gap_ms),
            doc_layout: settings.group_info_doc_layout,
            online: Mutex::new(HashMap::new()),
            retiring: Mutex::new(Vec::new()),
            next_connection: AtomicU64::new(1),
        }
    }

    fn retiring(&self) -> std::sync::MutexGuard<'_, Vec<(i64, String)>> {
        self.retiring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `token` of `uid` belongs to a login being signed out.
    fn is_retiring(&self, uid: i64, token: &str) -> bool {
        self.retiring()
            .iter()
            .any(|(user, retired)| *user == uid && same_token(token, retired))
    }

    fn online(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u64, CancellationToken)>> {
        self.online.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The user logged in on this connection.
struct Login {
    session: Arc<UserSession>,
    /// The legacy token handed to the client.
    token: String,
    /// Cancelled when the same user logs in on another connection of this bridge.
    superseded: CancellationToken,
    pusher: JoinHandle<()>,
    /// The unread messages the login announced, until the client fetches them.
    backlog: Arc<Backlog>,
}

struct Connection {
    shared: Arc<Shared>,
    /// The services, acting for this client's address.
    backend: Backend,
    id: u64,
    peer: SocketAddr,
    counters: Counters,
    /// Boxed: a channel allocates room for 32 items up front, and an idle connection should
    /// not pay for 32 whole replies.
    out: mpsc::Sender<Box<Reply>>,
    login: Option<Login>,
}

/// Serves one client until it closes, its writer fails, or the bridge shuts down.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    conns: Connections,
) {
    let (read, write) = stream.into_split();
    let (out, queue) = mpsc::channel(QUEUE);
    let writer =
        tokio::spawn(write_loop(write, queue, shared.write_gap, conns.counters).in_current_span());
    let mut conn = Connection {
        id: shared.next_connection.fetch_add(1, Ordering::Relaxed),
        backend: shared.backend.for_client(peer.ip()),
        shared,
        peer,
        counters: conns.counters,
        out,
        login: None,
    };
    // The start of a command whose rest has not arrived yet, and until when it waits for it.
    let mut partial = Vec::new();
    let mut partial_due = None;
    loop {
        let superseded = conn.login.as_ref().map(|l| l.superseded.clone());
        tokio::select! {
            () = conns.closing.cancelled() => break,
            () = async {
                match &superseded {
                    Some(token) => token.cancelled().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!("user logged in elsewhere; this connection no longer has them");
                Box::pin(conn.end_login(false)).await;
            }
            () = until(partial_due) => {
                partial_due = None;
                // Boxed, so that the command handlers' state is allocated only while a
                // command runs, not kept in every idle connection's task.
                if !Box::pin(conn.handle_read(&std::mem::take(&mut partial))).await {
                    break;
                }
            }
            ready = read.readable() => {
                if ready.is_err() {
                    break;
                }
                let mut buf = Vec::with_capacity(MAX_READ);
                match read.try_read_buf(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        if !partial.is_empty() {
                            partial_due = None;
                            let held = std::mem::take(&mut partial);
                            if codec::starts_with_command(&buf) {
                                // Not the rest of it: a new command. The held one goes alone.
                                if !Box::pin(conn.handle_read(&held)).await {
                                    break;
                                }
                            } else {
                                buf = [held, buf].concat();
                            }
                        }
                        let mut commands = codec::commands(&buf);
                        let cut_short = commands
                            .pop_if(|last| buf.len() < MAX_READ && codec::incomplete(last));
                        if !Box::pin(conn.handle_commands(&commands)).await {
                            break;
                        }
                        if let Some(start) = cut_short {
                            partial = start.to_vec();
                            partial_due = Some(Instant::now() + PARTIAL_WAIT);
                        }
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        }
    }
    Box::pin(conn.end_login(true)).await;
    drop(conn);
    let _ = writer.await;
}

/// Completes at `due`, or never.
async fn until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Writes each queued message with its own write, at least `gap` after the previous one.
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Box<Reply>>,
    gap: Duration,
    counters: Counters,
) {
    let mut last: Option<Instant> = None;
    while let Some(reply) = queue.recv().await {
        if let Some(last) = last {
            tokio::time::sleep_until(last + gap).await;
        }
        if write.write_all(&reply.to_bytes()).await.is_err() {
            return;
        }
        counters.frame_out(reply.name());
        last = Some(Instant::now());
    }
    let _ = write.shutdown().await;
}

/// Constant-time comparison of a presented token with the issued one.
fn same_token(presented: &str, issued: &str) -> bool {
    presented.len() == issued.len()
        && presented
            .bytes()
            .zip(issued.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A password as the client sent it: MD5 hex (what the real client sends) or, for anything
/// else, the literal string (the real server stored whatever it got).
fn password_scheme(password: &str) -> PasswordScheme {
    if password.len() == 32 && password.bytes().all(|b| b.is_ascii_hexdigit()) {
        PasswordScheme::Md5Hex
    } else {
        PasswordScheme::Plain
    }
}

/// The `ErrorInfo` reason of a failed call (empty when it carries none).
fn reason(status: &Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Accept (`0`) or reject (`1`), judged by the first character as the real server did.
fn flag(flag: &str) -> Option<bool> {
    match flag.as_bytes().first() {
        Some(b'0') => Some(true),
        Some(b'1') => Some(false),
        _ => None,
    }
}

/// A token-carrying command resolved to the user it acts for.
enum Actor {
    /// This connection's own login.
    Own(Arc<UserSession>),
    /// A session opened from a (uid, token) pair issued to another connection; closed after
    /// the command so it never outlives the login it came from.
    Borrowed(Arc<UserSession>),
}

impl Actor {
    fn session(&self) -> &Arc<UserSession> {
        match self {
            Actor::Own(s) | Actor::Borrowed(s) => s,
        }
    }
}

impl Connection {
    /// Handles one read (one command, or several a client wrote back to back); false when
    /// the connection should close.
    async fn handle_read(&mut self, bytes: &[u8]) -> bool {
        self.handle_commands(&codec::commands(bytes)).await
    }

    /// Handles the commands of a read in order; false when the connection should close.
    async fn handle_commands(&mut self, commands: &[&[u8]]) -> bool {
        for &command in commands {
            if !self.handle_command(command).await {
                return false;
            }
        }
        true
    }

    /// Handles one command; false when the connection should close.
    async fn handle_command(&mut self, bytes: &[u8]) -> bool {
        let (name, parsed) = match codec::parse(bytes) {
            Ok(request) => (request.command().name(), Ok(request)),
            Err(ParseError::Fields(command) | ParseError::Encoding(Some(command))) => {
                (command.name(), Err(Some(command)))
            }
            Err(ParseError::Unknown(name)) => {
                tracing::debug!(command = %name, "unknown command, not answered");
                self.counters.frame_in("unknown");
                self.counters.error("unknown");
                return true;
            }
            Err(ParseError::Empty | ParseError::Encoding(None)) => {
                self.counters.frame_in("unknown");
                self.counters.error("unknown");
                return true;
            }
        };
        self.counters.frame_in(name);
        let span = tracing::info_span!("frame", command = name);
        async {
            match parsed {
                Ok(request) => self.handle(request).await,
                Err(command) => {
                    self.counters.error(name);
                    match command {
                        Some(command) => self.send(command.malformed()).await,
                        None => true,
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Queues a reply; false when the writer is gone (the client closed).
    async fn send(&self, reply: Reply) -> bool {
        self.out.send(Box::new(reply)).await.is_ok()
    }

    /// Sends `reply`, counting it as an error of `command`.
    async fn fail(&self, command: Command, reply: Reply) -> bool {
        self.counters.error(command.name());
        self.send(reply).await
    }

    /// Drops this connection's login. `sign_out` unless the user moved to another connection:
    /// then they stay online there.
    async fn end_login(&mut self, sign_out: bool) {
        let Some(login) = self.login.take() else {
            return;
        };
        login.pusher.abort();
        let uid = login.session.user_id();
        // The token stops working here before anyone can see the user offline.
        let retired = (uid, login.token.clone());
        self.shared.retiring().push(retired.clone());
        // Signed out only if no newer login of the user took over.
        let sign_out = self.forget_online(uid) && sign_out;
        // Closing the connection is a logout: the user goes offline (an idle stream alone
        // would keep them present until the presence timeout) and the token stops working.
        if sign_out {
            let offline = async {
                let request = login
                    .session
                    .request(SetPresenceRequest {
                        status: PresenceStatus::Offline.into(),
                    })
                    .await?;
                login
                    .session
                    .backend()
                    .messaging()
                    .set_presence(request)
                    .await
            }
            .await;
            if let Err(err) = offline {
                tracing::debug!(%err, "signing out failed");
            }
        }
        if let Err(err) = login.session.logout().await {
            tracing::debug!(%err, "logout on close failed");
        }
        // The account service refuses the token itself from now on.
        self.shared.retiring().retain(|entry| *entry != retired);
    }

    /// Removes `user` from the online map if this connection holds them; false if another
    /// connection does (or nobody).
    fn forget_online(&self, user: i64) -> bool {
        let mut online = self.shared.online();
        let ours = online.get(&user).is_some_and(|(conn, _)| *conn == self.id);
        if ours {
            online.remove(&user);
        }
        ours
    }

    /// The user a (uid, token) pair acts for: this connection's login, or a login made on
    /// another connection (the real server did not bind tokens to sockets).
    async fn authorize(&self, auth: &Auth) -> Option<Actor> {
        if let Some(login) = &self.login
            && login.session.user_id() == auth.uid.value
            && same_token(&auth.token, &login.token)
        {
            return Some(Actor::Own(login.session.clone()));
        }
        if auth.token.is_empty() || self.shared.is_retiring(auth.uid.value, &auth.token) {
            return None;
        }
        let opened = self
            .backend
            .exchange_legacy_token(ExchangeLegacyTokenRequest {
                protocol: PROTOCOL.into(),
                user: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(auth.uid.value)),
                }),
                token: auth.token.clone(),
                rotate: false,
                format: LegacyTokenFormat::Alnum16.into(),
                client: format!("bridge-pipe {}", self.peer),
            })
            .await
            .ok()?
            .into_inner();
        Some(Actor::Borrowed(Arc::new(UserSession::new(
            self.backend.clone(),
            opened,
        ))))
    }

    /// This connection's login when the command names no uid (seed-document forms), if the
    /// token (when one is given) is the one issued to it.
    fn own(&self, token: Option<&str>) -> Option<Actor> {
        let login = self.login.as_ref()?;
        match token {
            Some(token) if !same_token(token, &login.token) => None,
            _ => Some(Actor::Own(login.session.clone())),
        }
    }

    async fn release(actor: Actor) {
        if let Actor::Borrowed(session) = actor
            && let Err(err) = session.logout().await
        {
            tracing::debug!(%err, "closing a borrowed session failed");
        }
    }

    async fn handle(&mut self, request: Request) -> bool {
        let command = request.command();
        match request {
            Request::Register {
                username,
                password,
                nickname,
                icon,
                signature,
                question,
                answer,
            } => {
                let Ok(question) = question.trim().parse::<i32>() else {
                    return self.fail(command, Reply::RegisterError).await;
                };
                let registered = self
                    .backend
                    .account()
                    .register(RegisterRequest {
                        username,
                        password_scheme: password_scheme(&password).into(),
                        password,
                        nickname,
                        avatar: icon,
                        signature,
                        security_question_id: question,
                        security_answer: answer,
                        ..Default::default()
                    })
                    .await;
                match registered {
                    Ok(_) => self.send(Reply::RegisterSucc).await,
                    Err(err) => {
                        tracing::info!(reason = %reason(&err), "register refused");
                        self.fail(command, Reply::RegisterError).await
                    }
                }
            }
            Request::Login { username, password } => self.login(username, password).await,
            Request::ForgetPasswd {
                username,
                question,
                answer,
                new_password,
            } => {
                let Ok(question) = question.trim().parse::<i32>() else {
                    return self.fail(command, Reply::UpPassError).await;
                };
                let recovered = self
                    .backend
                    .account()
                    .recover_password(RecoverPasswordRequest {
                        user: Some(UserRef {
                            r#ref: Some(user_ref::Ref::Username(username)),
                        }),
                        proof: Some(Proof::SecurityAnswer(SecurityAnswer {
                            question_id: question,
                            answer,
                        })),
                        new_scheme: password_scheme(&new_password).into(),
                        new_password,
                    })
                    .await;
                match recovered {
                    Ok(_) => self.send(Reply::UpPassSucc).await,
                    Err(_) => self.fail(command, Reply::UpPassError).await,
                }
            }
            Request::GetUnreadFriendRequest { auth }
            | Request::GetUnreadGroupRequest { auth }
            | Request::GetUnreadMessage { auth } => {
                let actor = match &auth {
                    Some(auth) => self.authorize(auth).await,
                    None => self.own(None),
                };
                let Some(actor) = actor else {
                    return self.fail(command, command.token_error()).await;
                };
                let open = match command {
                    Command::GetUnreadFriendRequest => {
                        self.unread_friend_requests(actor.session()).await
                    }
                    Command::GetUnreadGroupRequest => {
                        self.unread_group_requests(actor.session()).await
                    }
                    _ => {
                        let backlog = match &actor {
                            Actor::Own(_) => self.login.as_ref().map(|l| l.backlog.clone()),
                            Actor::Borrowed(_) => None,
                        };
                        self.unread_messages(actor.session(), backlog.as_deref())
                            .await
                    }
                };
                Self::release(actor).await;
                open
            }
            Request::HandGroupRequest {
                admin,
                token,
                applicant,
                group,
                flag: answer,
            } => {
                let actor = match admin {
                    Some(uid) => self.authorize(&Auth { uid, token }).await,
                    None => self.own(Some(&token)),
                };
                let Some(actor) = actor else {
                    return self.fail(command, command.token_error()).await;
                };
                let reply = match flag(&answer) {
                    None => Reply::HandGroupRequestError("无效的操作！"),
                    Some(accept) => {
                        let answered = async {
                            let request = actor
                                .session()
                                .request(RespondJoinRequestRequest {
                                    request: Some(
                                        respond_join_request_request::Request::Applicant(
                                            Applicant {
                                                group_id: group.value,
                                                user_id: applicant.value,
                                            },
                                        ),
                                    ),
                                    accept,
                                })
                                .await?;
                            actor
                                .session()
                                .backend()
                                .social()
                                .respond_join_request(request)
                                .await
                        }
                        .await;
                        match answered {
                            Ok(_) => Reply::HandGroupRequestSucc { accepted: accept },
                            Err(err) if reason(&err) == "NOT_ADMIN" => {
                                Reply::HandGroupRequestError("您不是群管理员！")
                            }
                            Err(_) => Reply::HandGroupRequestError("不存在的请求！"),
                        }
                    }
                };
                Self::release(actor).await;
                self.reply(command, reply).await
            }
            Request::SendFileInBand => self.fail(command, Reply::SendFileUnsupported).await,
            other => {
                let Some(auth) = other.auth().cloned() else {
                    return self.fail(command, command.malformed()).await;
                };
                let Some(actor) = self.authorize(&auth).await else {
                    return self.fail(command, command.token_error()).await;
                };
                let reply = self.act(actor.session(), other).await;
                Self::release(actor).await;
                match reply {
                    Ok(reply) => self.reply(command, reply).await,
                    Err(err) => {
                        tracing::warn!(%err, "backend call failed");
                        self.fail(command, failure(command)).await
                    }
                }
            }
        }
    }

    /// Sends `reply`, counting `_error` replies as errors of `command`.
    async fn reply(&self, command: Command, reply: Reply) -> bool {
        if reply.name().ends_with("_error") {
            self.counters.error(command.name());
        }
        self.send(reply).await
    }

    async fn login(&mut self, username: String, password: String) -> bool {
        let backend = self.backend.clone();
        let logged_in = backend
            .login(LoginRequest {
                identifier: Some(Identifier::Username(username)),
                password_scheme: password_scheme(&password).into(),
                password,
                client: format!("bridge-pipe {}", self.peer),
            })
            .await;
        let response = match logged_in {
            Ok(response) => response.into_inner(),
            // A refused password (also an empty one) is the real server's "wrong user name or
            // password"; "login failed" is left for the service failing.
            Err(err)
                if reason(&err) == "BAD_CREDENTIALS" || err.code() == Code::InvalidArgument =>
            {
                return self.fail(Command::Login, Reply::LoginError).await;
            }
            Err(err) => {
                tracing::warn!(%err, "login failed");
                return self.fail(Command::Login, Reply::LoginFailed).await;
            }
        };
        let session = Arc::new(UserSession::new(backend.clone(), response));
        // A new login replaces whatever this connection had, and takes the user over from
        // any other connection here before going online, so that connection's close does
        // not sign the user out.
        let uid = session.user_id();
        let other_user = self
            .login
            .as_ref()
            .is_some_and(|l| l.session.user_id() != uid);
        self.end_login(other_user).await;
        let superseded = CancellationToken::new();
        let previous = self
            .shared
            .online()
            .insert(uid, (self.id, superseded.clone()));
        if let Some((conn, token)) = previous
            && conn != self.id
        {
            token.cancel();
        }
        let opened = async {
            let token = backend
                .account()
                .issue_legacy_token(
                    session
                        .request(IssueLegacyTokenRequest {
                            protocol: PROTOCOL.into(),
                            format: LegacyTokenFormat::Alnum16.into(),
                        })
                        .await?,
                )
                .await?
                .into_inner()
                .token;
            let stream = events::subscribe(&session, SUBSCRIBE_PATIENCE).await?;
            let unread = events::unread(&session).await?;
            Ok::<_, Status>((token, stream, unread))
        }
        .await;
        let (token, stream, unread) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                tracing::warn!(%err, "opening the session failed");
                self.forget_online(uid);
                let _ = session.logout().await;
                return self.fail(Command::Login, Reply::LoginFailed).await;
            }
        };
        let sent = self
            .send(Reply::LoginSucc {
                uid,
                token: token.clone(),
                unread: unread.len() as u64,
            })
            .await;
        let backlog = Backlog::at_login(!unread.is_empty());
        let pusher = tokio::spawn(
            events::push(session.clone(), stream, self.out.clone(), backlog.clone())
                .in_current_span(),
        );
        self.login = Some(Login {
            session,
            token,
            superseded,
            pusher,
            backlog,
        });
        sent
    }

    async fn unread_friend_requests(&self, session: &UserSession) -> bool {
        let mut pending = Vec::new();
        let mut page_token = String::new();
        let listed: Result<(), Status> = async {
            loop {
                let page = session
                    .backend()
                    .social()
                    .list_friend_requests(
                        session
                            .request(ListFriendRequestsRequest {
                                direction: rosetta_proto::social::v1::Direction::Incoming.into(),
                                include_answered: false,
                                page: Some(PageRequest {
                                    page_size: PAGE,
                                    page_token: page_token.clone(),
                                }),
                            })
                            .await?,
                    )
                    .await?
                    .into_inner();
                pending.extend(page.requests.into_iter().map(|r| PendingFriend {
                    applicant: r.from.map_or(0, |u| u.id),
                    note: r.note,
                }));
                page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                if page_token.is_empty() {
                    return Ok(());
                }
            }
        }
        .await;
        match listed {
            Ok(()) => self.send(Reply::UnreadFriendRequests(pending)).await,
            Err(err) => {
                tracing::warn!(%err, "listing friend requests failed");
                let command = Command::GetUnreadFriendRequest;
                self.fail(command, failure(command)).await
            }
        }
    }

    async fn unread_group_requests(&self, session: &UserSession) -> bool {
        let mut pending = Vec::new();
        let mut page_token = String::new();
        let listed: Result<(), Status> = async {
            loop {
                let page = session
                    .backend()
                    .social()
                    .list_join_requests(
                        session
                            .request(ListJoinRequestsRequest {
                                group_id: 0,
                                mine: false,
                                include_answered: false,
                                page: Some(PageRequest {
                                    page_size: PAGE,
                                    page_token: page_token.clone(),
                                }),
                            })
                            .await?,
                    )
                    .await?
                    .into_inner();
                pending.extend(page.requests.into_iter().map(|r| PendingJoin {
                    applicant: r.applicant.map_or(0, |u| u.id),
                    group: r.group_id,
                    note: r.note,
                }));
                page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                if page_token.is_empty() {
                    return Ok(());
                }
            }
        }
        .await;
        match listed {
            Ok(()) => self.send(Reply::UnreadGroupRequests(pending)).await,
            Err(err) => {
                tracing::warn!(%err, "listing join requests failed");
                let command = Command::GetUnreadGroupRequest;
                self.fail(command, failure(command)).await
            }
        }
    }

    /// Each stored unread message in its own write, then `no_unread_message|0`; the messages
    /// sent count as read. With this connection's login, the messages it already pushed live
    /// are left out (and marked read too).
    async fn unread_messages(&self, session: &UserSession, backlog: Option<&Backlog>) -> bool {
        let unread = match events::unread(session).await {
            Ok(unread) => unread,
            Err(err) => {
                tracing::warn!(%err, "reading unread messages failed");
                let command = Command::GetUnreadMessage;
                return self.fail(command, failure(command)).await;
            }
        };
        let pushed = backlog.map(Backlog::pushed).unwrap_or_default();
        for message in unread.iter().filter(|m| !pushed.contains(&m.id)) {
            if !self.send(events::unread_line(message)).await {
                return false;
            }
        }
        let mut read = unread;
        read.extend(backlog.map(Backlog::release).unwrap_or_default());
        events::mark_read(session, &read).await;
        self.send(Reply::NoUnreadMessage).await
    }

    /// The token-checked commands that answer with one reply.
    async fn act(&self, session: &UserSession, request: Request) -> Result<Reply, Status> {
        let social = || session.backend().social();
        let me = session.user_id();
        Ok(match request {
            Request::UpdateProfile {
                nickname,
                icon,
                signature,
                security,
                ..
            } => {
                let (question, answer) = match security {
                    Some((question, answer)) => match question.trim().parse::<i32>() {
                        Ok(question) => (Some(question), Some(answer)),
                        Err(_) => return Ok(Reply::UpdateProfileError),
                    },
                    None => (None, None),
                };
                let request = session
                    .request(UpdateProfileRequest {
                        nickname: Some(nickname),
                        avatar: Some(icon),
                        signature: Some(signature),
                        security_question_id: question,
                        security_answer: answer,
                        ..Default::default()
                    })
                    .await?;
                match session.backend().account().update_profile(request).await {
                    Ok(_) => Reply::UpdateProfileSucc,
                    Err(err) if err.code() == tonic::Code::Unavailable => return Err(err),
                    Err(_) => Reply::UpdateProfileError,
                }
            }
            Request::GetUserInfo { auth, target } => {
                let request = session
                    .request(LookupUserRequest {
                        user: Some(UserRef {
                            r#ref: Some(user_ref::Ref::Id(target.value)),
                        }),
                    })
                    .await?;
                match session.backend().account().lookup_user(request).await {
                    Ok(user) => {
                        let user = user.into_inner();
                        Reply::UserInfo {
                            own: auth.uid.raw == target.raw,
                            nickname: user.nickname,
                            icon: user.avatar,
                            signature: user.signature,
                        }
                    }
                    Err(err) if err.code() == tonic::Code::NotFound => Reply::UnknownUserInfo,
                    Err(err) => return Err(err),
                }
            }
            Request::GetUserFriend { .. } => {
                let mut friends = Vec::new();
                let mut page_token = String::new();
                loop {
                    let page = social()
                        .list_contacts(
                            session
                                .request(ListContactsRequest {
                                    page: Some(PageRequest {
                                        page_size: PAGE,
                                        page_token,
                                    }),
                                })
                                .await?,
                        )
                        .await?
                        .into_inner();
                    friends.extend(
                        page.contacts
                            .iter()
                            .filter_map(|c| c.user.as_ref())
                            .map(|u| u.id),
                    );
                    page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                    if page_token.is_empty() {
                        break;
                    }
                }
                Reply::FriendInfo { friends }
            }
            Request::GetUserGroup { .. } => {
                let mut groups = Vec::new();
                let mut page_token = String::new();
                loop {
                    let page = social()
                        .list_my_groups(
                            session
                                .request(ListMyGroupsRequest {
                                    page: Some(PageRequest {
                                        page_size: PAGE,
                                        page_token,
                                    }),
                                })
                                .await?,
                        )
                        .await?
                        .into_inner();
                    groups.extend(page.groups.iter().map(|g| g.id));
                    page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                    if page_token.is_empty() {
                        break;
                    }
                }
                Reply::GroupInfo { groups }
            }
            Request::GetGroupInfo { group, .. } => {
                let found = social()
                    .get_group(
                        session
                            .request(GetGroupRequest {
                                group_id: group.value,
                            })
                            .await?,
                    )
                    .await;
                let found = match found {
                    Ok(found) => found.into_inner(),
                    // Unknown, or not visible to a non-member: the real server's one answer.
                    Err(err)
                        if matches!(
                            err.code(),
                            tonic::Code::NotFound | tonic::Code::PermissionDenied
                        ) || matches!(reason(&err).as_str(), "NOT_FOUND" | "NOT_MEMBER") =>
                    {
                        return Ok(Reply::GroupNotFound);
                    }
                    Err(err) => return Err(err),
                };
                let mut members = Vec::new();
                let mut page_token = String::new();
                loop {
                    let page = social()
                        .list_group_members(
                            session
                                .request(ListGroupMembersRequest {
                                    group_id: group.value,
                                    page: Some(PageRequest {
                                        page_size: PAGE,
                                        page_token,
                                    }),
                                })
                                .await?,
                        )
                        .await?
                        .into_inner();
                    members.extend(
                        page.members
                            .iter()
                            .filter_map(|m| m.user.as_ref())
                            .map(|u| u.id)
                            .filter(|id| *id != found.owner_id),
                    );
                    page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                    if page_token.is_empty() {
                        break;
                    }
                }
                Reply::GroupDetail {
                    group: group.raw,
                    name: found.name,
                    admin: found.owner_id,
                    members,
                    doc_layout: self.shared.doc_layout,
                }
            }
            Request::AddFriend { target, note, .. } => {
                let request = session
                    .request(SendFriendRequestRequest {
                        to: Some(UserRef {
                            r#ref: Some(user_ref::Ref::Id(target.value)),
                        }),
                        note,
                    })
                    .await?;
                match social().send_friend_request(request).await {
                    Ok(_) => Reply::AddFriendSucc,
                    Err(err) => match reason(&err).as_str() {
                        "ALREADY_FRIENDS" => Reply::AddFriendError("已存在好友！"),
                        // Asking again while a request waits: the real server acknowledged.
                        "REQUEST_PENDING" => Reply::AddFriendSucc,
                        "REVERSE_REQUEST_PENDING" => {
                            Reply::AddFriendError("对方已向你发送好友请求！")
                        }
                        "NOT_FOUND" => Reply::AddFriendError("用户不存在！"),
                        "BLOCKED" => Reply::AddFriendError("无法添加该用户！"),
                        _ if target.value == me => Reply::AddFriendError("不能添加自己！"),
                        _ if err.code() == tonic::Code::InvalidArgument => {
                            Reply::AddFriendError("请求无效！")
                        }
                        _ => return Err(err),
                    },
                }
            }
            Request::DelFriend { friend, .. } => {
                let request = session
                    .request(RemoveFriendRequest {
                        user_id: friend.value,
                    })
                    .await?;
                // The real server answered success whatever was named (a non-friend, oneself).
                match social().remove_friend(request).await {
                    Ok(_) => Reply::DelFriendSucc,
                    Err(err) if matches!(err.code(), Code::InvalidArgument | Code::NotFound) => {
                        Reply::DelFriendSucc
                    }
                    Err(_) => Reply::DelFriendError,
                }
            }
            Request::HandFriendRequest {
                applicant,
                flag: answer,
                ..
            } => {
                let Some(accept) = flag(&answer) else {
                    return Ok(Reply::HandFriendRequestError("无效的操作！"));
                };
                let request = session
                    .request(RespondFriendRequestRequest {
                        request: Some(respond_friend_request_request::Request::FromUserId(
                            applicant.value,
                        )),
                        accept,
                    })
                    .await?;
                match social().respond_friend_request(request).await {
                    Ok(_) => Reply::HandFriendRequestSucc { accepted: accept },
                    Err(_) => Reply::HandFriendRequestError("不存在的请求！"),
                }
            }
            Request::CreateGroup { name, group, .. } => {
                let request = session
                    .request(CreateGroupRequest {
                        name,
                        requested_id: group.as_ref().map(|g| g.value),
                        ..Default::default()
                    })
                    .await?;
                match social().create_group(request).await {
                    Ok(created) => Reply::CreateGroupSucc {
                        group: group.map_or_else(|| created.into_inner().id.to_string(), |g| g.raw),
                    },
                    Err(err) if reason(&err) == "GROUP_ID_TAKEN" => {
                        Reply::CreateGroupError("群号已被使用！")
                    }
                    Err(_) => Reply::CreateGroupError("群组创建失败！"),
                }
            }
            Request::JoinGroup { group, note, .. } => {
                let request = session
                    .request(RequestJoinGroupRequest {
                        group_id: group.value,
                        note,
                    })
                    .await?;
                match social().request_join_group(request).await {
                    Ok(_) => Reply::JoinGroupSucc,
                    Err(err) => match reason(&err).as_str() {
                        "REQUEST_PENDING" => Reply::JoinGroupSucc,
                        "ALREADY_MEMBER" => Reply::JoinGroupError("已是群成员！"),
                        _ if err.code() == tonic::Code::Unavailable => return Err(err),
                        _ => Reply::JoinGroupError("群组不存在！"),
                    },
                }
            }
            Request::SendMessage {
                kind,
                to,
                time,
                data,
                ..
            } => {
                if kind > 3 {
                    return Ok(Reply::SendMessageError("消息类型错误！"));
                }
                if data.is_empty() {
                    return Ok(Reply::SendMessageError("消息不能为空！"));
                }
                let private = kind % 2 == 0;
                let request = session
                    .request(SendMessageRequest {
                        to: Some(if private {
                            To::ToUserId(to.value)
                        } else {
                            To::ToGroupId(to.value)
                        }),
                        kind: rosetta_proto::messaging::v1::MessageKind::Text.into(),
                        text: data,
                        client_message_id: events::client_message_id(kind),
                        client_time: time,
                        ..Default::default()
                    })
                    .await?;
                match session.backend().messaging().send_message(request).await {
                    Ok(sent) => Reply::SendMessageSucc {
                        online: !private || sent.into_inner().recipient_online,
                    },
                    Err(err) => match reason(&err).as_str() {
                        "NOT_FRIENDS" => Reply::SendMessageError("对方不是你的好友！"),
                        "BLOCKED" => Reply::SendMessageError("对方拒绝接收消息！"),
                        "MUTED" => Reply::SendMessageError("你已被禁言！"),
                        "TOO_LARGE" => Reply::SendMessageError("消息过长！"),
                        "NOT_MEMBER" if !private => Reply::SendMessageError("群组不存在！"),
                        "NOT_FOUND" if private => Reply::SendMessageError("用户不存在！"),
                        "NOT_FOUND" => Reply::SendMessageError("群组不存在！"),
                        _ if err.code() == tonic::Code::InvalidArgument => {
                            Reply::SendMessageError("发送失败！")
                        }
                        _ => return Err(err),
                    },
                }
            }
            Request::SendFile { receiver, rest, .. } => {
                let mut parts = rest.split('|');
                let host = parts.next().unwrap_or_default().to_owned();
                let port = parts
                    .next()
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(0);
                let file_name = parts.next().unwrap_or_default().to_owned();
                let file_size = parts
                    .next()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                let request = session
                    .request(SendSignalRequest {
                        to_user_id: receiver.value,
                        kind: Some(send_signal_request::Kind::FileOffer(FileOffer {
                            host,
                            port,
                            file_name,
                            file_size,
                            raw: rest,
                        })),
                    })
                    .await?;
                match session.backend().messaging().send_signal(request).await {
                    Ok(_) => Reply::SendFile { online: true },
                    // Offline, not a friend, or unknown: the offer cannot be delivered.
                    Err(err) if err.code() == tonic::Code::Unavailable => return Err(err),
                    Err(_) => Reply::SendFile { online: false },
                }
            }
            // Handled before: they need the connection or carry no token.
            Request::Register { .. }
            | Request::Login { .. }
            | Request::ForgetPasswd { .. }
            | Request::HandGroupRequest { .. }
            | Request::SendFileInBand
            | Request::GetUnreadFriendRequest { .. }
            | Request::GetUnreadGroupRequest { .. }
            | Request::GetUnreadMessage { .. } => failure(request.command()),
        })
    }
}

/// The reply to a command whose backend call failed for a reason the protocol has no word for.
fn failure(command: Command) -> Reply {
    use Command as C;
    match command {
        C::Register => Reply::RegisterError,
        C::Login => Reply::LoginFailed,
        C::UpdateProfile => Reply::UpdateProfileError,
        C::ForgetPasswd => Reply::UpPassError,
        C::GetUserInfo => Reply::UnknownUserInfo,
        C::GetGroupInfo => Reply::GroupNotFound,
        C::AddFriend => Reply::AddFriendError("发送失败！"),
        C::DelFriend => Reply::DelFriendError,
        C::HandFriendRequest => Reply::HandFriendRequestError("不存在的请求！"),
        C::CreateGroup => Reply::CreateGroupError("群组创建失败！"),
        C::JoinGroup => Reply::JoinGroupError("群组不存在！"),
        C::HandGroupRequest => Reply::HandGroupRequestError("不存在的请求！"),
        C::SendMessage => Reply::SendMessageError("发送失败！"),
        C::SendFile => Reply::SendFile { online: false },
        C::GetUserFriend => Reply::FriendInfo { friends: vec![] },
        C::GetUserGroup => Reply::GroupInfo { groups: vec![] },
        C::GetUnreadFriendRequest => Reply::UnreadFriendRequests(vec![]),
        C::GetUnreadGroupRequest => Reply::UnreadGroupRequests(vec![]),
        C::GetUnreadMessage => Reply::NoUnreadMessage,
    }
}
