//! One pipe connection: reads are commands, commands become calls on the canonical services,
//! and every reply or push is written by the connection's own task, each on its own and the
//! configured gap after the previous one (the protocol has no framing; [`writer`]).
//!
//! An idle logged-in connection is one task (this module's [`run`]) holding its socket and a
//! compact login record: its events come from the process's shared stream, its read marks
//! go to the bridge's one batcher, and it has no writer task and no outgoing queue.
//!
//! The commands themselves are in one module per area, each a table of legacy command →
//! canonical call → legacy reply: [`account`], [`social`], [`chat`]; refusals are turned into
//! replies by the one table in [`reasons`]; logging in and out is [`login`].

mod account;
mod chat;
mod login;
mod reader;
mod reasons;
mod social;
mod writer;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use rosetta_bridge_kit::{
    Backend, ClientHandle, Connections, Counters, EventStream, Handshake, Live, LiveLogins,
    LoginMarks, LoginRegistry, ReadMarks, Registered, UserSession, settings::PipeSettings,
};
use rosetta_proto::messaging::v1::Event;
use tokio::net::TcpStream;
use tracing::Instrument as _;

use crate::{
    codec::{Command, ParseError, Reply, Request},
    events::Backlog,
};
use reader::{Partial, Read};
pub(crate) use writer::Socket;

/// Page size for the listings behind one reply, and the most pages one reply reads.
const PAGE: u32 = 500;
const MAX_PAGES: usize = 200;
/// How long a login waits for its event stream to be live before answering anyway.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);
pub(crate) const PROTOCOL: &str = "pipe";

/// What all connections of one bridge share.
pub(crate) struct Shared {
    backend: Backend,
    write_gap: Duration,
    doc_layout: bool,
    /// The read marks of pushed messages, gathered and written for every login here.
    marks: ReadMarks,
    /// The latest login of each user here (the real server's online map: pushes go to the
    /// latest login only; an older one loses the user).
    registry: LoginRegistry,
    /// Live connections per user, so the last one to close shows the user offline.
    live: LiveLogins,
    /// Tokens of closed logins whose sign-out is under way: refused here at once, so that
    /// nobody who sees the user offline can still use the token (the real server cleared the
    /// token before the online flag) while the logout call is in flight.
    retiring: Mutex<Vec<(i64, String)>>,
}

impl Shared {
    pub(crate) fn new(backend: Backend, settings: &PipeSettings) -> Self {
        let live = LiveLogins::reported("pipe", backend.board());
        Self {
            backend,
            write_gap: Duration::from_millis(settings.write_gap_ms),
            doc_layout: settings.group_info_doc_layout,
            marks: ReadMarks::new(Duration::from_millis(settings.read_mark_flush_ms)),
            registry: LoginRegistry::default(),
            live,
            retiring: Mutex::new(Vec::new()),
        }
    }

    fn retiring(&self) -> std::sync::MutexGuard<'_, Vec<(i64, String)>> {
        self.retiring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where this connection's login stands.
enum LoginState {
    /// Nobody logged in (yet, or any more: after a newer login of the user elsewhere took
    /// the user over, the connection stays open, as on the real server).
    Anonymous,
    LoggedIn(Box<Login>),
}

/// The user logged in on this connection.
struct Login {
    session: Arc<UserSession>,
    /// The legacy token handed to the client.
    token: String,
    /// This login's place as the user's latest; kicked when a newer login takes it.
    registered: Registered,
    /// Counts this connection among the user's live ones.
    live: Live,
    /// The user's events, polled by the connection's task and turned into pushes.
    events: EventStream,
    /// Set once the event stream ended because the session was revoked.
    revoked: bool,
    /// The unread messages the login announced, until the client fetches them.
    backlog: Backlog,
    /// Read marks of the messages pushed, written in the background by the bridge's batcher.
    marks: LoginMarks,
}

struct Connection {
    shared: Arc<Shared>,
    /// This client's address and failed logins, for the services acting for it
    /// ([`Self::backend`]); not a whole backend, which every idle connection would hold.
    client: ClientHandle,
    peer: SocketAddr,
    counters: Counters,
    /// The client's socket: read in [`run`], written by the handlers.
    socket: Socket,
    state: LoginState,
    /// Marked at the first login: the handshake timeout no longer applies.
    handshake: Handshake,
}

/// What woke the connection up.
enum Wake {
    Read(Read),
    PartialDue,
    Kicked,
    Revoked,
    Event(Box<Event>),
}

/// Serves one client until it closes, a write to it fails, its session is revoked, or the
/// bridge shuts down.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    conns: Connections,
) {
    let mut conn = Connection {
        client: ClientHandle::new(peer.ip()),
        socket: Socket::new(stream, shared.write_gap, conns.counters),
        shared,
        peer,
        counters: conns.counters,
        state: LoginState::Anonymous,
        handshake: conns.handshake.clone(),
    };
    let mut partial = Partial::default();
    loop {
        let wake = tokio::select! {
            () = conns.closing.cancelled() => break,
            wake = login_wake(&mut conn.state) => wake,
            () = partial.due() => Wake::PartialDue,
            ready = conn.socket.stream().readable() => match ready {
                Ok(()) => Wake::Read(reader::take(conn.socket.stream(), &mut partial)),
                Err(err) => {
                    tracing::debug!(%err, "socket failed; closing");
                    break;
                }
            },
        };
        // A handler waits on the services (each call within its deadline); the bridge
        // shutting down does not wait for it.
        let go_on = tokio::select! {
            biased;
            () = conns.closing.cancelled() => false,
            // Boxed, so that the handlers' state is allocated only while one runs, not kept
            // in every idle connection's task.
            go_on = Box::pin(conn.on(wake, &mut partial)) => go_on,
        };
        if !go_on {
            break;
        }
    }
    Box::pin(conn.end_login()).await;
    conn.socket.close().await;
}

/// What the login needs next: an event to push, or its end (kicked by a newer login, or the
/// session revoked); never without a login. Cancel-safe, for the connection's `select!`.
async fn login_wake(state: &mut LoginState) -> Wake {
    match state {
        LoginState::LoggedIn(login) => tokio::select! {
            () = login.registered.kicked() => Wake::Kicked,
            event = login.events.next() => match event {
                Some(event) => Wake::Event(Box::new(event)),
                None => Wake::Revoked,
            },
        },
        LoginState::Anonymous => std::future::pending().await,
    }
}

impl Connection {
    /// The services, acting for this client's address.
    fn backend(&self) -> Backend {
        self.shared.backend.with_client(&self.client)
    }

    /// Handles what woke the connection; false when it should close.
    async fn on(&mut self, wake: Wake, partial: &mut Partial) -> bool {
        match wake {
            Wake::Read(Read::Closed) => false,
            Wake::Read(Read::NotReady) => true,
            Wake::Read(Read::Commands { alone, commands }) => {
                self.handle_commands(alone).await && self.handle_commands(commands).await
            }
            Wake::PartialDue => self.handle_commands(partial.take_due()).await,
            Wake::Kicked => {
                tracing::info!("user logged in elsewhere; this connection no longer has them");
                self.end_login().await;
                true
            }
            Wake::Revoked => {
                if let LoginState::LoggedIn(login) = &mut self.state {
                    login.revoked = true;
                }
                // The protocol has no message for it; the client notices the close and must
                // log in again, as after any reconnect.
                tracing::info!("session revoked; closing the connection");
                false
            }
            Wake::Event(event) => match &self.state {
                LoginState::LoggedIn(login) => {
                    let me = login.session.user_id();
                    crate::events::push(me, *event, &self.socket, &login.backlog, &login.marks)
                        .await
                }
                LoginState::Anonymous => true,
            },
        }
    }

    /// The login on this connection, if any.
    fn current_login(&self) -> Option<&Login> {
        match &self.state {
            LoginState::LoggedIn(login) => Some(login),
            LoginState::Anonymous => None,
        }
    }

    /// Handles the commands of a read in order; false when the connection should close.
    async fn handle_commands(&mut self, commands: Vec<Result<Request, ParseError>>) -> bool {
        for command in commands {
            if !self.handle_command(command).await {
                return false;
            }
        }
        true
    }

    /// Handles one parsed command; false when the connection should close.
    async fn handle_command(&mut self, parsed: Result<Request, ParseError>) -> bool {
        let (name, parsed) = match parsed {
            Ok(request) => (request.command().name(), Ok(request)),
            Err(ParseError::Fields(command) | ParseError::Encoding(Some(command))) => {
                (command.name(), Err(command))
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
                Err(command) => self.fail(command, command.malformed()).await,
            }
        }
        .instrument(span)
        .await
    }

    /// The command table: each command to the module that serves it.
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
                let profile = account::Profile {
                    nickname,
                    icon,
                    signature,
                    question,
                    answer,
                };
                let reply = account::register(&self.backend(), username, password, profile).await;
                self.answer(command, reply).await
            }
            Request::Login { username, password } => self.login(username, password).await,
            Request::ForgetPasswd {
                username,
                question,
                answer,
                new_password,
            } => {
                let reply = account::forget_passwd(
                    &self.backend(),
                    username,
                    &question,
                    answer,
                    new_password,
                )
                .await;
                self.answer(command, reply).await
            }
            Request::GetUnreadFriendRequest { auth }
            | Request::GetUnreadGroupRequest { auth }
            | Request::GetUnreadMessage { auth } => self.unread(command, auth).await,
            Request::HandGroupRequest {
                admin,
                token,
                applicant,
                group,
                flag,
            } => {
                self.hand_group_request(admin, token, applicant, group, &flag)
                    .await
            }
            Request::SendFileInBand => self.fail(command, Reply::SendFileUnsupported).await,
            other => self.token_checked(other).await,
        }
    }

    /// The token-checked commands that answer with one reply.
    async fn token_checked(&mut self, request: Request) -> bool {
        let command = request.command();
        let Some(auth) = request.auth().cloned() else {
            return self.fail(command, command.malformed()).await;
        };
        let actor = match self.authorize(command, &auth).await {
            Ok(actor) => actor,
            Err(reply) => return self.fail(command, reply).await,
        };
        let session = actor.session().clone();
        let reply = match request {
            Request::UpdateProfile {
                nickname,
                icon,
                signature,
                security,
                ..
            } => account::update_profile(&session, nickname, icon, signature, security).await,
            Request::GetUserInfo { auth, target } => {
                account::user_info(&session, &auth.uid, target).await
            }
            Request::GetUserFriend { .. } => social::friends(&session).await,
            Request::GetUserGroup { .. } => social::groups(&session).await,
            Request::GetGroupInfo { group, .. } => {
                social::group_info(&session, group, self.shared.doc_layout).await
            }
            Request::AddFriend { target, note, .. } => {
                social::add_friend(&session, target, note).await
            }
            Request::DelFriend { friend, .. } => social::del_friend(&session, friend).await,
            Request::HandFriendRequest {
                applicant, flag, ..
            } => social::hand_friend_request(&session, applicant, &flag).await,
            Request::CreateGroup { name, group, .. } => {
                social::create_group(&session, name, group).await
            }
            Request::JoinGroup { group, note, .. } => {
                social::join_group(&session, group, note).await
            }
            Request::SendMessage {
                kind,
                to,
                time,
                data,
                ..
            } => chat::send_message(&session, kind, to, time, data).await,
            Request::SendFile { receiver, rest, .. } => {
                chat::send_file(&session, receiver, rest).await
            }
            // Served in `handle`: they need the connection or carry no token.
            Request::Register { .. }
            | Request::Login { .. }
            | Request::ForgetPasswd { .. }
            | Request::HandGroupRequest { .. }
            | Request::SendFileInBand
            | Request::GetUnreadFriendRequest { .. }
            | Request::GetUnreadGroupRequest { .. }
            | Request::GetUnreadMessage { .. } => Ok(reasons::failure(command)),
        };
        login::release(actor).await;
        self.answer(command, reply).await
    }

    /// Sends the reply, or the command's failure form for a call that failed (logged here
    /// with the user and the command).
    async fn answer(&self, command: Command, reply: Result<Reply, tonic::Status>) -> bool {
        match reply {
            Ok(reply) => self.reply(command, reply).await,
            Err(status) => {
                let user = self.current_login().map(|l| l.session.user_id());
                tracing::warn!(?user, command = command.name(), %status, "backend call failed");
                self.fail(command, reasons::failure(command)).await
            }
        }
    }

    /// Writes a reply; false when the write failed (the client closed or stopped reading).
    async fn send(&self, reply: Reply) -> bool {
        self.socket.send(&reply).await
    }

    /// Sends `reply`, counting it as an error of `command`.
    async fn fail(&self, command: Command, reply: Reply) -> bool {
        self.counters.error(command.name());
        self.send(reply).await
    }

    /// Sends `reply`, counting `_error` replies as errors of `command`.
    async fn reply(&self, command: Command, reply: Reply) -> bool {
        if reply.name().ends_with("_error") {
            self.counters.error(command.name());
        }
        self.send(reply).await
    }
}

#[cfg(test)]
mod size_tests;
