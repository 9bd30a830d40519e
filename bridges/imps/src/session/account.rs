//! Account commands: registration, login, heartbeats and status.
//!
//! | client | canonical | reply |
//! |---|---|---|
//! | C_REGISTER | `Register` (plain password; a refused e-mail is dropped) | S_REGISTER / S_ERROR code + 0 |
//! | C_LOGIN_REQ | `Login` (user name, then `#<id>`), `Subscribe` | S_LOGIN_RSP, the backlog, pending friend requests / S_ERROR |
//! | C_HEARTBEAT_REQ | `Heartbeat` with the last fix | none |
//! | (no heartbeat in time) | `SetPresence(OFFLINE)` | none (friends get S_STATUS_NOTIFY 2) |
//! | C_STATUS_NOTIFY | `SetPresence` | none |

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use rosetta_bridge_kit::{EventStream, OnClose, UserSession, end_login, login::set_presence};
use rosetta_proto::{
    account::v1::{
        Gender, LoginRequest, PasswordScheme, RegisterRequest, login_request::Identifier,
    },
    common::v1::Location,
    messaging::v1::HeartbeatRequest,
    social::v1::PresenceStatus,
};
use tokio::time::Instant;

use super::{Close, Conn, Ctx, LoggedIn, Login, backlog, replies::refused};
use crate::{
    codec::{Fix, HIDE, OFFLINE, ONLINE, ServerMessage, error},
    names::{NameBook, alias_id, display_name},
};

/// How long a login waits for its event stream to go live: well under the 10 s after which
/// the client gives up on S_LOGIN_RSP (imps.md §4.2). A stream slower than that still comes
/// up and delivers, only the reply does not wait for it.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(3);

impl Login {
    /// No heartbeat within the timeout: the login lapses (the user is shown offline).
    fn lapsed(self) -> Self {
        match self {
            Login::Online(me) => Login::Lapsed(me),
            other => other,
        }
    }

    /// A heartbeat: a lapsed login is online again; true when it was lapsed.
    pub(super) fn revive(&mut self) -> bool {
        let revived = match std::mem::replace(self, Login::Anonymous) {
            Login::Lapsed(me) => (Login::Online(me), true),
            other => (other, false),
        };
        *self = revived.0;
        revived.1
    }
}

impl Conn {
    pub(super) async fn register(
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
            username: user.clone(),
            email,
            password,
            password_scheme: PasswordScheme::Plain.into(),
            gender: gender.into(),
            ..Default::default()
        };
        match self.io.backend.register_legacy(request).await {
            Ok(()) => self.io.send(ServerMessage::Registered).await,
            Err(status) => {
                self.io.counters.error("C_REGISTER");
                let code = refused(&user, "registration", &status);
                self.io
                    .send(ServerMessage::Error {
                        code,
                        extra: Some(0),
                    })
                    .await
            }
        }
    }

    pub(super) async fn login(&mut self, user: String, password: String) -> Result<(), Close> {
        if self.login.user().is_some() {
            self.io.counters.error("C_LOGIN_REQ");
            return self.io.error(error::ALREADY_LOGGED_IN).await;
        }
        let session = match self.authenticate(&user, password).await {
            Ok(session) => Arc::new(session),
            Err(status) => {
                self.io.counters.error("C_LOGIN_REQ");
                let code = refused(&user, "login", &status);
                return self.io.error(code).await;
            }
        };
        let me = session.user().clone();
        // Counted before the stream shows the user online, registered before it too: the
        // older login of the user, if any, is kicked and does not show them offline.
        let live = self.shared.live.enter(me.id).await;
        let registered = self.shared.logins.register(me.id);
        // Live before the reply: the client acts on S_LOGIN_RSP at once, and so may its friends.
        let events = match EventStream::open(session.clone(), SUBSCRIBE_PATIENCE).await {
            Ok(events) => events,
            Err(status) => {
                self.io.counters.error("C_LOGIN_REQ");
                let code = refused(me.id, "subscribe at login", &status);
                drop(registered);
                end_login(live, &session, OnClose::Logout).await;
                return self.io.error(code).await;
            }
        };
        let name = display_name(&me);
        self.login = Login::Online(Box::new(LoggedIn {
            session: session.clone(),
            name: name.clone(),
            registered,
            live,
            events,
            last_heartbeat: Instant::now(),
            names: {
                let mut names = NameBook::new(self.shared.name_ttl);
                names.learn(me.id, &name, Instant::now());
                names
            },
            shown: HashMap::new(),
            clips: Default::default(),
            asked: HashSet::new(),
            delivered: backlog::Delivered::default(),
            marks: self.shared.marks.login(session.clone()),
        }));
        self.handshake.done();
        self.io
            .send(ServerMessage::LoggedIn {
                user: name,
                // As the legacy server, which always sent 0 (imps.md §4.2).
                gender: 0,
                email: me.email,
            })
            .await?;
        let Some(me) = self.login.user_mut() else {
            return Ok(());
        };
        let mut ctx = Ctx {
            io: &mut self.io,
            me,
        };
        // The client takes S_SEND_MSG at any time after S_LOGIN_RSP.
        ctx.deliver_backlog().await?;
        ctx.pending_requests().await
    }

    /// `Login` by user name, then by `#<id>` alias when the name is one.
    async fn authenticate(
        &self,
        user: &str,
        password: String,
    ) -> Result<UserSession, tonic::Status> {
        let attempt = |identifier| LoginRequest {
            identifier: Some(identifier),
            password: password.clone(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "imps".into(),
        };
        let backend = &self.io.backend;
        let mut result = backend
            .login(attempt(Identifier::Username(user.to_owned())))
            .await;
        if let (Err(status), Some(id)) = (&result, alias_id(user)) {
            tracing::debug!(%status, "no such user name; trying the alias");
            result = backend.login(attempt(Identifier::UserId(id))).await;
        }
        Ok(UserSession::new(backend.clone(), result?.into_inner()))
    }

    /// No heartbeat for the timeout: the user goes offline and the friends are told.
    pub(super) async fn lapse(&mut self) -> Result<(), Close> {
        self.login = std::mem::replace(&mut self.login, Login::Anonymous).lapsed();
        let Some(me) = self.login.user() else {
            return Ok(());
        };
        tracing::info!("no heartbeat within the timeout, user offline");
        if let Err(status) = set_presence(&me.session, PresenceStatus::Offline).await {
            refused(
                me.session.user_id(),
                "offline after the heartbeat timeout",
                &status,
            );
        }
        Ok(())
    }
}

impl Ctx<'_> {
    pub(super) async fn heartbeat(&mut self, fixes: Vec<Fix>) -> Result<(), Close> {
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
        self.me.last_heartbeat = Instant::now();
        let sent = self
            .session()
            .call(
                HeartbeatRequest { location },
                |backend, request| async move { backend.messaging().heartbeat(request).await },
            )
            .await;
        if let Err(status) = sent {
            refused(self.user_id(), "heartbeat", &status);
        }
        Ok(())
    }

    pub(super) async fn status(&mut self, status: u8) -> Result<(), Close> {
        let status = match status {
            ONLINE => PresenceStatus::Online,
            OFFLINE => PresenceStatus::Offline,
            HIDE => PresenceStatus::Invisible,
            _ => return Ok(()),
        };
        if let Err(err) = set_presence(self.session(), status).await {
            refused(self.user_id(), "status change", &err);
        }
        Ok(())
    }
}
