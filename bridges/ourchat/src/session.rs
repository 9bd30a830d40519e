//! One OurChat connection: the WebSocket upgrade, then text frames ⇄ calls on the canonical
//! services, and while logged in the user's event stream, whose events become pushes.
//!
//! This module is the connection's loop and its command table ([`Connection::handle`]); the
//! commands live by area: [`crate::account`] (verify, register, login, account info,
//! unregister), [`crate::chat`] (text, new session), [`crate::push`] (events → frames), and
//! the one table of refusals in [`crate::refusal`].
//!
//! The real client (54660bbd) aborts on any frame it did not ask for (ourchat.md §4.1), so a
//! connection gets pushes (code 0 messages, code 9 new sessions, code 18 errors) only once it
//! has shown it reads them: a login in the document's form (with `time`) or with
//! `"push": true`, any request only the document defines (codes 0, 8, 10, 16), or the
//! `pushes` setting.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_kit::{
    Backend, Connections, Counters, EventStream, Handshake, Live, LiveLogins, OnClose, UserSession,
    end_login, next_event, settings::OurChatSettings,
};
use rosetta_proto::messaging::v1::Event;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Error as WsError, Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    codec::{self, DecodeError, Request, code},
    refusal::Failure,
};

/// A client that does not take a frame (or a close) within this time is disconnected.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) type Ws = WebSocketStream<TcpStream>;
/// A frame to send and the command it is counted under.
pub(crate) type Reply = (&'static str, String);

/// Small buffers: connections are many and mostly idle, and frames are capped at
/// [`codec::MAX_FRAME`] (a larger message or frame is refused by the WebSocket layer).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // The first read buffer, and the size of each read: frames are small JSON, and a
        // larger one grows the buffer as it arrives.
        .read_buffer_size(1024)
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
    // The handshake, the login's end and every step but the idle wait are boxed, so that
    // their state is allocated only while they run, not kept in every idle connection's task
    // (the handshake's state, made here unboxed, would stay in this future for its whole life).
    let accepted = tokio::select! {
        () = conns.closing.cancelled() => return,
        accepted = Box::pin(accept(stream, &settings, conns.counters)) => accepted,
    };
    let Some(ws) = accepted else { return };
    let mut connection = Connection {
        backend,
        peer,
        counters: conns.counters,
        pushes: settings.pushes,
        live,
        login: Login::Out,
        ocids: Default::default(),
        handshake: conns.handshake.clone(),
    };
    connection.serve(ws, &conns.closing).await;
    Box::pin(connection.log_out()).await;
}

/// The WebSocket upgrade, within the header timeout; `None` (counted) when it fails.
async fn accept(stream: TcpStream, settings: &OurChatSettings, counters: Counters) -> Option<Ws> {
    let accept = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config()));
    // A peer that has not sent its whole handshake by the header timeout is dropped.
    let header_timeout = Duration::from_millis(settings.limits.header_timeout_ms);
    let accepted = if header_timeout.is_zero() {
        Ok(accept.await)
    } else {
        tokio::time::timeout(header_timeout, accept).await
    };
    match accepted {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(err)) => {
            tracing::debug!(%err, "WebSocket handshake failed");
            counters.error("handshake");
            None
        }
        Err(_) => {
            tracing::debug!("WebSocket handshake timed out");
            counters.error("handshake");
            None
        }
    }
}

pub(crate) struct Connection {
    pub(crate) backend: Backend,
    pub(crate) peer: SocketAddr,
    pub(crate) counters: Counters,
    /// Whether this client reads unsolicited frames.
    pub(crate) pushes: bool,
    /// The users logged in on this bridge instance, counted per connection.
    pub(crate) live: LiveLogins,
    pub(crate) login: Login,
    /// Ocids met, both ways: pushes' senders, sends' recipients.
    pub(crate) ocids: crate::ocids::Ocids,
    /// Marked at the first login: the handshake timeout no longer applies.
    pub(crate) handshake: Handshake,
}

/// Where the connection's login stands.
pub(crate) enum Login {
    /// No login yet, or it ended (closed, unregistered, replaced by another login).
    Out,
    /// Logged in (boxed: a login is large and most of a connection's life is idle).
    In(Box<LoggedIn>),
}

pub(crate) struct LoggedIn {
    pub(crate) session: Arc<UserSession>,
    /// The SHA-256 hex the client logged in with; unregister (16) carries no password, and
    /// DeleteAccount checks one.
    pub(crate) password: String,
    /// The user's events, from before the login reply on (nothing after it is missed).
    pub(crate) events: EventStream,
    /// This connection counted among the user's live ones.
    pub(crate) live: Live,
}

impl LoggedIn {
    /// Stops the event stream, shows the user offline if this was their last connection here,
    /// and ends the canonical session (an OurChat close is a logout).
    pub(crate) async fn end(self) {
        let LoggedIn {
            session,
            events,
            live,
            ..
        } = self;
        drop(events);
        end_login(live, &session, OnClose::Logout).await;
    }
}

enum Step {
    Closing,
    /// An event of the logged-in user (boxed: events are large); `None` when their session
    /// was revoked.
    Event(Option<Box<Event>>),
    Incoming(Option<Result<Message, WsError>>),
}

impl Connection {
    async fn serve(&mut self, mut ws: Ws, closing: &CancellationToken) {
        loop {
            let step = tokio::select! {
                () = closing.cancelled() => Step::Closing,
                event = next_event(self.events()) => Step::Event(event.map(Box::new)),
                incoming = ws.next() => Step::Incoming(incoming),
            };
            let reply = match step {
                Step::Closing => {
                    Box::pin(close(&mut ws, CloseCode::Away, "server shutting down")).await;
                    return;
                }
                Step::Event(Some(event)) => Box::pin(self.push(*event)).await,
                Step::Event(None) => {
                    Box::pin(self.revoked(&mut ws)).await;
                    return;
                }
                Step::Incoming(Some(Ok(Message::Text(text)))) => {
                    Box::pin(self.frame(text.as_str())).await
                }
                Step::Incoming(other) => {
                    if Box::pin(self.incoming(&mut ws, other)).await.is_break() {
                        return;
                    }
                    None
                }
            };
            if let Some(reply) = reply
                && Box::pin(self.send(&mut ws, reply)).await.is_err()
            {
                return;
            }
        }
    }

    /// Anything but a text frame: the connection goes on only for pings, pongs and the like.
    async fn incoming(
        &self,
        ws: &mut Ws,
        incoming: Option<Result<Message, WsError>>,
    ) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        match incoming {
            None => Break(()),
            Some(Ok(Message::Binary(_))) => {
                self.counters.frame_in("binary");
                self.counters.error("binary");
                close(ws, CloseCode::Unsupported, "text frames only").await;
                Break(())
            }
            // Pings are answered and close handshakes completed by the WebSocket layer.
            Some(Ok(_)) => Continue(()),
            Some(Err(WsError::Capacity(err))) => {
                tracing::debug!(%err, "frame too large");
                self.counters.frame_in("oversized");
                self.counters.error("oversized");
                close(ws, CloseCode::Size, "frame too large").await;
                Break(())
            }
            Some(Err(err)) => {
                tracing::debug!(%err, "connection failed");
                Break(())
            }
        }
    }

    /// The session was revoked (logged out elsewhere, password changed, account deleted): the
    /// login ends, a client that reads pushes is told why, and the connection closes (the
    /// client logs in again after reconnecting).
    async fn revoked(&mut self, ws: &mut Ws) {
        if let Some(reply) = self.error_frame("session ended: log in again")
            && self.send(ws, reply).await.is_err()
        {
            return;
        }
        self.log_out().await;
        close(ws, CloseCode::Policy, "session ended").await;
    }

    /// Ends the login, if any.
    pub(crate) async fn log_out(&mut self) {
        if let Login::In(login) = std::mem::replace(&mut self.login, Login::Out) {
            login.end().await;
        }
    }

    /// Sends one frame, giving up on a client that does not take it in time.
    async fn send(&self, ws: &mut Ws, (command, text): Reply) -> Result<(), WsError> {
        self.counters.frame_out(command);
        match tokio::time::timeout(WRITE_DEADLINE, ws.send(Message::text(text))).await {
            Ok(sent) => sent,
            Err(_) => {
                tracing::debug!(command, "client did not take a frame in time");
                Err(WsError::Io(std::io::ErrorKind::TimedOut.into()))
            }
        }
    }

    fn events(&mut self) -> Option<&mut EventStream> {
        match &mut self.login {
            Login::In(login) => Some(&mut login.events),
            Login::Out => None,
        }
    }

    pub(crate) fn session(&self) -> Option<Arc<UserSession>> {
        match &self.login {
            Login::In(login) => Some(Arc::clone(&login.session)),
            Login::Out => None,
        }
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

    /// The command table: each request, the calls that serve it (by area), and its reply.
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
            Request::ServerStatus => Ok(self.server_status().await),
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
            // Text has no reply of its own, only failures.
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
}

/// Closes the WebSocket with `code`, within [`WRITE_DEADLINE`].
async fn close(ws: &mut Ws, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    match tokio::time::timeout(WRITE_DEADLINE, ws.close(Some(frame))).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%err, "close failed"),
        Err(_) => tracing::debug!("client did not take the close in time"),
    }
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

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod size_tests;
