//! Logging in and out, and checking the (uid, token) pair a command presents.
//!
//! `login` → `Login` + `IssueLegacyToken` + `Subscribe` → `login_succ|…`. A second login of
//! the same user (any connection here) takes the user over, as on the real server: the older
//! connection stays open but loses the login (its token stops working, its pushes move).
//! Closing the connection signs the user out (offline now, session logged out); a revoked
//! session ends the login and closes the connection.

use std::sync::Arc;

use rosetta_bridge_kit::{EventStream, OnClose, UserSession, end_login};
use rosetta_proto::account::v1::{
    ExchangeLegacyTokenRequest, IssueLegacyTokenRequest, LegacyTokenFormat, LoginRequest,
    PasswordScheme, login_request::Identifier,
};
use rosetta_proto::common::v1::{UserRef, user_ref};
use tonic::Status;

use super::{
    Connection, Login, LoginState, PROTOCOL, SUBSCRIBE_PATIENCE,
    reasons::{self, Call},
};
use crate::{
    codec::{Auth, Command, Reply},
    events::{self, Backlog},
};

/// A token-carrying command resolved to the user it acts for.
pub(super) enum Actor {
    /// This connection's own login.
    Own(Arc<UserSession>),
    /// A session opened from a (uid, token) pair issued to another connection; closed after
    /// the command so it never outlives the login it came from.
    Borrowed(Arc<UserSession>),
}

impl Actor {
    pub(super) fn session(&self) -> &Arc<UserSession> {
        match self {
            Actor::Own(s) | Actor::Borrowed(s) => s,
        }
    }
}

/// Closes a borrowed session after its one command.
pub(super) async fn release(actor: Actor) {
    if let Actor::Borrowed(session) = actor
        && let Err(status) = session.logout().await
    {
        tracing::warn!(user = session.user_id(), %status, "closing a borrowed session failed");
    }
}

/// Constant-time comparison of a presented token with the issued one.
pub(super) fn same_token(presented: &str, issued: &str) -> bool {
    presented.len() == issued.len()
        && presented
            .bytes()
            .zip(issued.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A password as the client sent it: MD5 hex (what the real client sends) or, for anything
/// else, the literal string (the real server stored whatever it got).
pub(super) fn password_scheme(password: &str) -> PasswordScheme {
    if password.len() == 32 && password.bytes().all(|b| b.is_ascii_hexdigit()) {
        PasswordScheme::Md5Hex
    } else {
        PasswordScheme::Plain
    }
}

impl Connection {
    /// `login|username|password`.
    pub(super) async fn login(&mut self, username: String, password: String) -> bool {
        let logged_in = self
            .backend()
            .login(LoginRequest {
                identifier: Some(Identifier::Username(username)),
                password_scheme: password_scheme(&password).into(),
                password,
                client: format!("bridge-pipe {}", self.peer),
            })
            .await;
        let response = match logged_in.map(tonic::Response::into_inner) {
            Ok(response) => response,
            Err(status) => {
                let reply = reasons::refused(Call::Login, status);
                return self.answer(Command::Login, reply).await;
            }
        };
        let session = Arc::new(UserSession::new(self.backend(), response));
        let uid = session.user_id();
        // Counted and registered before the previous login here ends, so that a login of the
        // same user again does not show them offline in between.
        let live = self.shared.live.enter(uid).await;
        let registered = self.shared.registry.register(uid);
        self.end_login().await;
        let (token, events, unread) = match open(&session).await {
            Ok(opened) => opened,
            Err(status) => {
                tracing::warn!(user = uid, %status, "opening the session failed");
                end_login(live, &session, OnClose::Logout).await;
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
        let marks = self.shared.marks.login(session.clone());
        self.state = LoginState::LoggedIn(Box::new(Login {
            session,
            token,
            registered,
            live,
            events,
            revoked: false,
            backlog,
            marks,
        }));
        self.handshake.done();
        sent
    }

    /// Drops this connection's login, if any: the user goes offline if this was their last
    /// connection here, and the session is logged out (its token stops working).
    pub(super) async fn end_login(&mut self) {
        let LoginState::LoggedIn(login) = std::mem::replace(&mut self.state, LoginState::Anonymous)
        else {
            return;
        };
        let Login {
            session,
            token,
            registered,
            live,
            events,
            revoked,
            marks,
            ..
        } = *login;
        // The event stream goes first, so that no resubscription shows the user online again.
        drop(events);
        drop(registered);
        let uid = session.user_id();
        // A revoked session can neither mark, set presence nor log out; the services ended it.
        let on_close = if revoked {
            marks.abandon();
            OnClose::KeepSession
        } else {
            // The pushed messages' marks, while the session's token still works.
            marks.finish().await;
            OnClose::Logout
        };
        // The token stops working here before anyone can see the user offline.
        let retired = (uid, token);
        self.shared.retiring().push(retired.clone());
        end_login(live, &session, on_close).await;
        // The account service refuses the token itself from now on.
        self.shared.retiring().retain(|entry| *entry != retired);
    }

    /// The user a (uid, token) pair acts for: this connection's login, or a login made on
    /// another connection (the real server did not bind tokens to sockets). A pair that does
    /// not match is the command's token error; the services failing is its failure form.
    pub(super) async fn authorize(&self, command: Command, auth: &Auth) -> Result<Actor, Reply> {
        if let Some(login) = self.current_login()
            && login.session.user_id() == auth.uid.value
            && same_token(&auth.token, &login.token)
        {
            return Ok(Actor::Own(login.session.clone()));
        }
        if auth.token.is_empty() || self.is_retiring(auth.uid.value, &auth.token) {
            return Err(command.token_error());
        }
        let exchanged = self
            .backend()
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
            .await;
        match exchanged {
            Ok(opened) => Ok(Actor::Borrowed(Arc::new(UserSession::new(
                self.backend(),
                opened.into_inner(),
            )))),
            Err(status) => match reasons::refused(Call::TokenCheck(command), status) {
                Ok(token_error) => Err(token_error),
                Err(status) => {
                    tracing::warn!(
                        uid = auth.uid.value,
                        command = command.name(),
                        %status,
                        "checking a token failed"
                    );
                    Err(reasons::failure(command))
                }
            },
        }
    }

    /// This connection's login when the command names no uid (seed-document forms), if the
    /// token (when one is given) is the one issued to it.
    pub(super) fn own(&self, token: Option<&str>) -> Option<Actor> {
        let login = self.current_login()?;
        match token {
            Some(token) if !same_token(token, &login.token) => None,
            _ => Some(Actor::Own(login.session.clone())),
        }
    }

    /// Whether `token` of `uid` belongs to a login being signed out.
    fn is_retiring(&self, uid: i64, token: &str) -> bool {
        self.shared
            .retiring()
            .iter()
            .any(|(user, retired)| *user == uid && same_token(token, retired))
    }
}

/// The pipe token, the live event stream and the unread messages of a new login.
async fn open(
    session: &Arc<UserSession>,
) -> Result<
    (
        String,
        EventStream,
        Vec<rosetta_proto::messaging::v1::Message>,
    ),
    Status,
> {
    let token = session
        .call(
            IssueLegacyTokenRequest {
                protocol: PROTOCOL.into(),
                format: LegacyTokenFormat::Alnum16.into(),
            },
            |backend, request| async move { backend.account().issue_legacy_token(request).await },
        )
        .await?
        .token;
    let events = EventStream::open(session.clone(), SUBSCRIBE_PATIENCE).await?;
    let unread = events::unread(session).await?;
    Ok((token, events, unread))
}
