//! Logins, registration, the profile and LOGOUT:
//!
//! | CloudChat | canonical | reply |
//! |---|---|---|
//! | LOGIN | Login (+ LookupUser to tell an unknown name), IssueLegacyToken, Subscribe | LOGIN_SUCCESS / LOGIN_FAILURE |
//! | LOGIN_BY_TOKEN | ExchangeLegacyToken (rotating), Subscribe | LOGIN_SUCCESS / LOGIN_FAILURE |
//! | REGISTER | Register, Login, IssueLegacyToken, Subscribe | REGISTER_SUCCESS / REGISTER_FAILURE |
//! | HDL_INFO | (binds to the address's HTTP login), Subscribe | HDL_GOT |
//! | UPDATE_PROFILE | GetMyProfile, UpdateProfile | PROFILE_UPDATED_SUCCESS / PROFILE_UPDATED_FAILED |
//! | LOGOUT | SetPresence OFFLINE (last connection), Logout | none |

use std::sync::Arc;

use rosetta_bridge_kit::{OnClose, UserSession, login::set_presence};
use rosetta_proto::{
    account::v1::{
        ExchangeLegacyTokenRequest, GetMyProfileRequest, IssueLegacyTokenRequest,
        LegacyTokenFormat, LoginRequest, LoginResponse, LookupUserRequest, PasswordScheme,
        RegisterRequest, UpdateProfileRequest, login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    social::v1::PresenceStatus,
};
use serde_json::json;
use tonic::Status;

use super::{
    Conn, DEFAULT_AVATAR, Login, Proof, Replies, avatar_of,
    refusals::{Refusal, Step, failed, refused},
    reply,
};
use crate::codec;

const TOKEN_PROTOCOL: &str = "cloudchat";
/// The failure text of a change of user name or e-mail proven by the address alone.
const NOT_BY_ADDRESS: &str = "此连接不能修改用户名或邮箱";
/// LOGIN for a name nobody has.
const NO_SUCH_USER: &str = "用户不存在";

impl Conn {
    pub(super) async fn login(&mut self, username: String, password: String) -> Replies {
        let login = LoginRequest {
            identifier: Some(Identifier::Username(username.clone())),
            password,
            password_scheme: PasswordScheme::Plain as i32,
            client: self.client(),
        };
        match self.backend.login(login).await {
            Ok(response) => {
                self.opened(response.into_inner(), "LOGIN_SUCCESS", None)
                    .await
            }
            Err(status) => match refused(0, Step::Login, &status) {
                Refusal::BadCredentials if !self.user_exists(username).await => Err(NO_SUCH_USER),
                refusal => Err(refusal.text(Step::Login)),
            },
        }
    }

    pub(super) async fn login_by_token(&mut self, username: String, token: String) -> Replies {
        let exchange = ExchangeLegacyTokenRequest {
            protocol: TOKEN_PROTOCOL.into(),
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Username(username)),
            }),
            token,
            rotate: true,
            format: LegacyTokenFormat::Printable as i32,
            client: self.client(),
        };
        match self.backend.exchange_legacy_token(exchange).await {
            Ok(response) => {
                let response = response.into_inner();
                let token = response.legacy_token.clone();
                self.opened(response, "LOGIN_SUCCESS", Some(token)).await
            }
            Err(status) => Err(failed(0, Step::TokenLogin, &status)),
        }
    }

    pub(super) async fn register(
        &mut self,
        username: String,
        password: String,
        email: String,
    ) -> Replies {
        let register = RegisterRequest {
            username: username.clone(),
            email,
            password: password.clone(),
            password_scheme: PasswordScheme::Plain as i32,
            avatar: DEFAULT_AVATAR.into(),
            ..Default::default()
        };
        if let Err(status) = self.backend.account().register(register).await {
            return Err(failed(0, Step::Register, &status));
        }
        let login = LoginRequest {
            identifier: Some(Identifier::Username(username)),
            password,
            password_scheme: PasswordScheme::Plain as i32,
            client: self.client(),
        };
        match self.backend.login(login).await {
            Ok(response) => {
                self.opened(response.into_inner(), "REGISTER_SUCCESS", None)
                    .await
            }
            Err(status) => Err(failed(0, Step::OpenSession, &status)),
        }
    }

    /// A session was opened: give it a CloudChat token (unless the token login already
    /// rotated one), bind the WebSocket or remember it for this HTTP client, and reply.
    async fn opened(
        &mut self,
        response: LoginResponse,
        success: &'static str,
        token: Option<String>,
    ) -> Replies {
        let session = Arc::new(UserSession::new(self.shared.backend.clone(), response));
        let user = session.user().clone();
        let token = match token.filter(|t| !t.is_empty()) {
            Some(token) => token,
            None => issue_token(&session)
                .await
                .map_err(|status| failed(user.id, Step::OpenSession, &status))?,
        };
        if self.pushes.is_some() {
            self.bind(session, Proof::Credentials)
                .await
                .map_err(|status| failed(user.id, Step::OpenSession, &status))?;
        } else {
            self.shared.http.remember(self.peer, session);
        }
        let payload = codec::session_user(
            user.id,
            &user.username,
            &user.email,
            avatar_of(&user),
            &token,
        );
        Ok(vec![reply(success, payload)])
    }

    /// HDL_INFO: the HarmonyOS client binds its WebSocket to the session it opened over HTTP
    /// from the same address.
    pub(super) async fn hdl_info(&mut self, user_id: i64) -> Vec<super::Out> {
        if self.pushes.is_none() {
            // The real server had no HTTP handler for it: 200 with an empty body.
            return Vec::new();
        }
        let bound_to = match &self.login {
            Login::Bound(bound) => Some(bound.session.user_id()),
            Login::Anonymous => None,
        };
        if bound_to != Some(user_id) {
            // Only a live HTTP login of this address (none unless HTTP sessions are on).
            let Some(session) = self.shared.http.recall(self.peer, Some(user_id)) else {
                self.shared.counters.error("HDL_INFO");
                return Vec::new();
            };
            if let Err(status) = self.bind(session, Proof::Address).await {
                tracing::warn!(user = user_id, %status, "HDL_INFO: event stream");
                self.shared.counters.error("HDL_INFO");
                return Vec::new();
            }
        }
        vec![reply("HDL_GOT", json!({"userId": user_id}))]
    }

    /// LOGOUT: the login ends (the WebSocket's, or the HTTP login of this address), and the
    /// user shows offline now, not when presence times out. No reply.
    pub(super) async fn logout(&mut self, session: &Arc<UserSession>) {
        let me = session.user_id();
        self.shared.http.forget(self.peer, me);
        if matches!(self.login, Login::Bound(_)) {
            self.unbind(OnClose::Logout).await;
            return;
        }
        // An HTTP LOGOUT: no connection of this one is counted; the session says it itself.
        if let Err(status) = set_presence(session, PresenceStatus::Offline).await {
            tracing::warn!(user = me, %status, "LOGOUT: offline");
        }
        if let Err(status) = session.logout().await {
            tracing::warn!(user = me, %status, "LOGOUT");
        }
    }

    /// Whether a login name belongs to anybody, to tell "no such user" from "wrong password".
    /// Looking users up takes a session, so without one on this connection the answer is yes.
    async fn user_exists(&self, username: String) -> bool {
        let Some(session) = self.session_for(None) else {
            return true;
        };
        let lookup = LookupUserRequest {
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Username(username)),
            }),
        };
        let found = session
            .call(lookup, |backend, r| async move {
                backend.account().lookup_user(r).await
            })
            .await;
        match found {
            Ok(_) => true,
            Err(status) if status.code() == tonic::Code::NotFound => false,
            Err(status) => {
                tracing::info!(user = session.user_id(), %status, "login: user lookup");
                true
            }
        }
    }

    fn client(&self) -> String {
        format!("bridge-cloudchat {}", self.peer)
    }
}

/// UPDATE_PROFILE: the fields that differ from the stored profile change (the password field
/// is ignored; the clients send a placeholder).
pub(super) async fn update_profile(
    session: &UserSession,
    proof: Proof,
    username: Option<String>,
    email: Option<String>,
    avatar: Option<String>,
) -> Replies {
    let me = session.user_id();
    let fail = |status: Status| failed(me, Step::Profile, &status);
    // Compared with the stored profile, not the one at login: a change back to the login
    // value is a change too. Unchanged fields are left out (a user name "taken" by its own
    // owner would be refused).
    let current = session
        .call(GetMyProfileRequest {}, |backend, r| async move {
            backend.account().get_my_profile(r).await
        })
        .await
        .map_err(fail)?;
    let changed = |new: Option<String>, old: &str| new.filter(|v| !v.is_empty() && v != old);
    let update = UpdateProfileRequest {
        username: changed(username, &current.username),
        email: changed(email, &current.email),
        avatar: changed(avatar, &current.avatar),
        ..Default::default()
    };
    if proof == Proof::Address && (update.username.is_some() || update.email.is_some()) {
        return Err(NOT_BY_ADDRESS);
    }
    let call = |update: UpdateProfileRequest| {
        session.call(update, |backend, r| async move {
            backend.account().update_profile(r).await
        })
    };
    let user = match call(update.clone()).await {
        Ok(user) => user,
        Err(status) => match refused(me, Step::Profile, &status) {
            // A new e-mail needs a code sent to it, which this protocol cannot carry: the
            // other fields still change, and the reply says the e-mail did not.
            refusal @ Refusal::CodeRequired => {
                let rest = UpdateProfileRequest {
                    email: None,
                    ..update
                };
                call(rest).await.map_err(fail)?;
                return Err(refusal.text(Step::Profile));
            }
            refusal => return Err(refusal.text(Step::Profile)),
        },
    };
    // The real server echoed the stored password here; the bridge never does.
    let payload = json!({
        "userId": user.id,
        "username": user.username,
        "password": "",
        "email": user.email,
        "avatar": avatar_of(&user),
    });
    Ok(vec![reply("PROFILE_UPDATED_SUCCESS", payload)])
}

async fn issue_token(session: &UserSession) -> Result<String, Status> {
    let issue = IssueLegacyTokenRequest {
        protocol: TOKEN_PROTOCOL.into(),
        format: LegacyTokenFormat::Printable as i32,
    };
    let issued = session
        .call(issue, |backend, r| async move {
            backend.account().issue_legacy_token(r).await
        })
        .await?;
    Ok(issued.token)
}
