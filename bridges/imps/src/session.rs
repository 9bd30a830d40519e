//! One IMPS connection: frames in, canonical calls out; the logged-in user's events back as
//! the client's pushes (imps.md §3, §4, §6).
//!
//! This file holds the connection's life: the loop, the login state and the close. Each area's
//! commands live in their own module and read as legacy command → canonical call → legacy
//! reply: [`account`] (register, login, heartbeat, status), [`contacts`] (friend list, friend
//! requests, presence, names), [`chat`] (text), [`calls`] (call signals), [`clips`] (voice
//! clips) and [`backlog`] (what arrived while the user was away). [`replies`] is the one table
//! from a refusal's reason to the client's error code; [`io`] writes frames with a deadline.

mod account;
mod backlog;
mod calls;
mod chat;
mod clips;
mod contacts;
mod io;
mod replies;

use std::{
    collections::{HashMap, HashSet},
    future::pending,
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt as _;
use rosetta_bridge_kit::{
    Backend, Connections, EventStream, Handshake, Live, LiveLogins, LoginMarks, LoginRegistry,
    OnClose, ReadMarks, Registered, UserSession, end_login, kicked, next_event,
    settings::ImpsSettings,
};
use rosetta_proto::messaging::v1::{Event, event::Kind};
use tokio::{net::TcpStream, time::Instant};
use tokio_util::{codec::FramedRead, sync::CancellationToken};
use tracing::Instrument as _;

use crate::{
    codec::{ClientMessage, Frame, FrameCodec, cmd, error},
    names::NameBook,
};

use self::{clips::Clips, io::Io};

/// Initial read buffer of a connection.
const READ_BUFFER: usize = 1024;

/// What all connections of one bridge share.
pub struct Shared {
    backend: Backend,
    heartbeat_timeout: Duration,
    idle_close: Duration,
    /// How long a name → id entry is trusted.
    name_ttl: Duration,
    /// One login per user on this bridge: a new login kicks the old connection (error 7).
    logins: LoginRegistry,
    /// Connections per user, so that a user goes offline when their last one closes.
    live: LiveLogins,
    /// The read marks of messages pushed live, written off the push path.
    marks: ReadMarks,
}

impl Shared {
    pub fn new(backend: Backend, settings: &ImpsSettings) -> Self {
        let live = LiveLogins::reported("imps", backend.board());
        Self {
            backend,
            heartbeat_timeout: Duration::from_millis(settings.heartbeat_timeout_ms.max(1)),
            idle_close: Duration::from_millis(settings.idle_close_ms.max(1)),
            name_ttl: Duration::from_millis(settings.name_cache_ms),
            logins: LoginRegistry::default(),
            live,
            marks: ReadMarks::new(Duration::from_millis(settings.read_mark_flush_ms)),
        }
    }
}

/// Why a command ends the connection: the client broke the protocol, the socket failed or
/// the client does not read.
struct Close;

/// How a connection's loop ended, which decides what its close says and does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client left, broke the protocol, idled out, or the bridge stops.
    Left,
    /// A newer login of the same user took this one's place.
    Kicked,
    /// The canonical session was revoked (password changed, logged out elsewhere).
    Revoked,
}

/// Where a connection stands.
enum Login {
    Anonymous,
    /// Logged in, heartbeats arriving in time.
    Online(Box<LoggedIn>),
    /// Logged in but declared offline for want of heartbeats; the next one brings the user
    /// back.
    Lapsed(Box<LoggedIn>),
}

/// A logged-in user as this connection holds them.
struct LoggedIn {
    session: Arc<UserSession>,
    /// The name the client knows itself by; every frame must start with it.
    name: String,
    /// This login's place as the user's one login on the bridge.
    registered: Registered,
    /// Counts this connection among the user's live ones.
    live: Live,
    events: EventStream,
    last_heartbeat: Instant,
    /// IMPS names of users met, both ways.
    names: NameBook,
    /// Last status pushed per friend, so that repeated presence events are not re-sent.
    shown: HashMap<i64, u8>,
    /// Voice clips being received.
    clips: Clips,
    /// Friend requests already pushed: one can arrive live while the pending ones are listed.
    asked: HashSet<i64>,
    /// Messages delivered from the login's backlog, not to be pushed again live.
    delivered: backlog::Delivered,
    /// Read marks of the messages pushed live, waiting to be written.
    marks: LoginMarks,
}

impl Login {
    fn user(&self) -> Option<&LoggedIn> {
        match self {
            Login::Anonymous => None,
            Login::Online(me) | Login::Lapsed(me) => Some(me),
        }
    }

    fn user_mut(&mut self) -> Option<&mut LoggedIn> {
        match self {
            Login::Anonymous => None,
            Login::Online(me) | Login::Lapsed(me) => Some(me),
        }
    }

    /// When the user is declared offline unless a heartbeat comes first.
    fn heartbeat_due(&self, timeout: Duration) -> Option<Instant> {
        match self {
            Login::Online(me) => me.last_heartbeat.checked_add(timeout),
            Login::Anonymous | Login::Lapsed(_) => None,
        }
    }

    /// What the loop waits on besides the socket: the events and the kick.
    fn watched(&mut self) -> (Option<&mut EventStream>, Option<&Registered>) {
        match self.user_mut() {
            Some(LoggedIn {
                events, registered, ..
            }) => (Some(events), Some(registered)),
            None => (None, None),
        }
    }
}

/// One connection.
struct Conn {
    shared: Arc<Shared>,
    io: Io,
    login: Login,
    /// Marked at the login: the handshake timeout no longer applies.
    handshake: Handshake,
}

/// A logged-in user's command or push in progress: the socket and the login, borrowed
/// together, so that a handler gets the login once instead of checking for it.
struct Ctx<'a> {
    io: &'a mut Io,
    me: &'a mut LoggedIn,
}

impl Ctx<'_> {
    fn session(&self) -> &UserSession {
        &self.me.session
    }

    fn user_id(&self) -> i64 {
        self.me.session.user_id()
    }
}

/// Serves one client until it leaves, breaks the protocol, is kicked or the bridge stops.
pub async fn run(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, conns: Connections) {
    let (read, write) = stream.into_split();
    // Most connections idle for hours: the read buffer starts small (frames are rarely over a
    // few hundred bytes) and grows for the ones that are not.
    let mut frames = FramedRead::with_capacity(read, FrameCodec, READ_BUFFER);
    let backend = shared.backend.for_client(peer.ip());
    let mut conn = Conn {
        shared,
        io: Io::new(backend, peer, conns.counters, write),
        login: Login::Anonymous,
        handshake: conns.handshake.clone(),
    };
    let ending = conn.serve(&mut frames, &conns.closing).await;
    Box::pin(conn.close(ending)).await;
}

type Frames = FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>;

impl Conn {
    /// The connection's loop: frames, events, the kick, the heartbeat watchdog, the idle close
    /// and the bridge's shutdown, whichever comes first. A command in progress is abandoned
    /// when the bridge stops.
    async fn serve(&mut self, frames: &mut Frames, closing: &CancellationToken) -> Ending {
        loop {
            let idle_until = self.io.last_io + self.shared.idle_close;
            let heartbeat_due = self.login.heartbeat_due(self.shared.heartbeat_timeout);
            let (events, registered) = self.login.watched();
            // Handlers are boxed so that their state is allocated only while they run, not
            // kept in every idle connection's task.
            let handled = tokio::select! {
                () = closing.cancelled() => return Ending::Left,
                () = kicked(registered) => return Ending::Kicked,
                () = tokio::time::sleep_until(idle_until) => {
                    tracing::info!("nothing read or written for too long; closing");
                    return Ending::Left;
                }
                frame = frames.next() => match frame {
                    Some(Ok(frame)) => {
                        self.io.last_io = Instant::now();
                        interruptible(closing, Box::pin(self.frame(frame))).await
                    }
                    Some(Err(err)) => {
                        self.io.counters.error("malformed");
                        tracing::info!(%err, "closing on a malformed frame");
                        return Ending::Left;
                    }
                    None => return Ending::Left,
                },
                event = next_event(events) => match event {
                    Some(event) => interruptible(closing, Box::pin(self.event(event))).await,
                    None => return Ending::Revoked,
                },
                () = sleep_until(heartbeat_due) => {
                    interruptible(closing, Box::pin(self.lapse())).await
                }
            };
            if handled.is_err() {
                return Ending::Left;
            }
        }
    }

    async fn frame(&mut self, frame: Frame) -> Result<(), Close> {
        let name = cmd::name(frame.cmd);
        self.io.counters.frame_in(name);
        let span = tracing::info_span!("frame", command = name);
        async {
            let message = match ClientMessage::decode(&frame) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    // The client drops commands it does not know; so does the bridge.
                    self.io.counters.error(name);
                    tracing::debug!(cmd = frame.cmd, "unknown command ignored");
                    return Ok(());
                }
                Err(err) => {
                    self.io.counters.error(name);
                    tracing::info!(%err, "closing on a malformed body");
                    return Err(Close);
                }
            };
            let result = self.message(message, name).await;
            if result.is_err() {
                self.io.counters.error(name);
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The command table: each client command to its handler.
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
        let Some(me) = self.login.user() else {
            self.io.counters.error(name);
            return match message {
                // Late traffic of a session that ended: nothing to say.
                C::Heartbeat { .. } | C::Status { .. } => Ok(()),
                _ => self.io.error(error::NOT_ALLOWED).await,
            };
        };
        let sender = message.sender();
        if sender != me.name && sender != me.session.user().username {
            self.io.counters.error(name);
            tracing::warn!(claimed = %sender, "frame for another user refused");
            return self.io.error(error::NOT_ALLOWED).await;
        }
        if matches!(message, C::Heartbeat { .. }) {
            self.login.revive();
        }
        let Some(me) = self.login.user_mut() else {
            return Ok(());
        };
        let mut ctx = Ctx {
            io: &mut self.io,
            me,
        };
        match message {
            C::Heartbeat { fixes, .. } => ctx.heartbeat(fixes).await,
            C::FriendList { .. } => ctx.friend_list().await,
            C::AddFriend { friend, .. } => ctx.add_friend(&friend).await,
            C::AnswerFriend { friend, accept, .. } => ctx.answer_friend(&friend, accept).await,
            C::SendMessage { friend, text, .. } => ctx.send_text(&friend, text).await,
            C::Status { status, .. } => ctx.status(status).await,
            C::Audio { friend, data, .. } => ctx.audio(friend, data).await,
            C::CallInvite {
                friend,
                video,
                ip,
                port,
                ..
            } => ctx.call_invite(&friend, video, ip, port).await,
            C::CallAnswer {
                friend,
                video,
                accept,
                ip,
                port,
                ..
            } => ctx.call_answer(&friend, video, accept, ip, port).await,
            // Dialect A has no images (imps.md §3.11).
            C::Image { .. } => ctx.io.error(error::NOT_ALLOWED).await,
            C::Register { .. } | C::Login { .. } => Ok(()),
        }
    }

    /// The event table: each canonical event to the client's push.
    async fn event(&mut self, event: Event) -> Result<(), Close> {
        let Some(me) = self.login.user_mut() else {
            return Ok(());
        };
        let span = tracing::info_span!("push", seq = event.seq);
        let mut ctx = Ctx {
            io: &mut self.io,
            me,
        };
        async {
            match event.kind {
                Some(Kind::Message(message)) => ctx.push_message(message).await,
                Some(Kind::FriendRequestReceived(request)) => {
                    ctx.push_friend_request(request).await
                }
                Some(Kind::FriendRequestAnswered(request)) => ctx.push_friend_answer(request).await,
                Some(Kind::PresenceChanged(presence)) => ctx.push_presence(presence).await,
                Some(Kind::Signal(signal)) => ctx.push_signal(signal).await,
                Some(Kind::Announcement(announcement)) => ctx.push_announcement(announcement).await,
                // No push; a former friend's name is not sent to from memory any more.
                Some(Kind::FriendRemoved(removed)) => {
                    ctx.me.names.forget(removed.user_id);
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        .instrument(span)
        .await
    }

    /// Ends the connection. A kicked login is told (error 7), and so is one whose session was
    /// revoked, in the only words the client has for "you are no longer logged in here"; the
    /// user goes offline when this was their last connection, and the session ends.
    async fn close(mut self, ending: Ending) {
        let (Login::Online(me) | Login::Lapsed(me)) =
            std::mem::replace(&mut self.login, Login::Anonymous)
        else {
            return;
        };
        if ending != Ending::Left {
            // The connection closes next either way: a client that does not read loses the
            // notice, nothing more.
            let _ = self.io.error(error::ELSEWHERE).await;
        }
        let LoggedIn {
            session,
            registered,
            live,
            events,
            marks,
            ..
        } = *me;
        // No resubscription may show the user online again while the login ends.
        drop(events);
        drop(registered);
        match ending {
            // The session is gone: the services have nothing left to hear from it.
            Ending::Revoked => {
                marks.abandon();
                drop(live);
            }
            Ending::Left | Ending::Kicked => {
                // The pushed messages' marks, while the session's token still works.
                marks.finish().await;
                end_login(live, &session, OnClose::Logout).await;
            }
        }
    }
}

/// `handler`, abandoned when the bridge stops (the connection then closes).
async fn interruptible(
    closing: &CancellationToken,
    handler: impl Future<Output = Result<(), Close>>,
) -> Result<(), Close> {
    tokio::select! {
        result = handler => result,
        () = closing.cancelled() => Err(Close),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
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
