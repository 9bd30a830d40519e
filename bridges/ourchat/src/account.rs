//! Account commands: GENERATE_VERIFY (14 → 15), REGISTER (4 → 5), LOGIN (6 → 7),
//! ACCOUNT_INFO (10 → 11), UNREGISTER (16 → 17).

use std::{sync::Arc, time::Duration};

use rosetta_bridge_kit::{EventStream, UserSession};
use rosetta_proto::account::v1::{
    DeleteAccountRequest, LoginRequest, LoginResponse, PasswordScheme, RegisterRequest,
    SendVerificationCodeRequest, VerificationChannel, VerificationPurpose,
    login_request::Identifier,
};
use rosetta_proto::admin::v1::GetServerStatusRequest;
use serde_json::{Map, Value};
use tonic::Status;

use crate::{
    chat::lookup,
    codec::{self, LoginType, code},
    refusal::{self, Failure, Refusal, refusal},
    session::{Connection, LoggedIn, Login, now_secs},
};

/// How long a login waits for its event stream to come up before replying anyway.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);
/// The seed's account-info fields, sent when a request names none.
const ACCOUNT_FIELDS: [&str; 5] = ["ocid", "nickname", "status", "avater", "time"];

impl Connection {
    /// SERVER_STATUS (12): status 1 ("Maintenance in progress"; the client keeps its Join
    /// button disabled) while the server is in maintenance, else 0. Services that do not
    /// answer get 0: the client may then try, and a login it sends meets the outage's own
    /// reply (status 2).
    pub(crate) async fn server_status(&self) -> String {
        let asked = self
            .backend
            .node()
            .get_server_status(GetServerStatusRequest {})
            .await;
        let maintenance = match asked {
            Ok(reply) => reply.into_inner().maintenance,
            Err(status) => {
                refusal::log(&status, "server status unknown");
                false
            }
        };
        codec::server_status(if maintenance { codec::MAINTENANCE } else { 0 })
    }

    /// GENERATE_VERIFY (14). With an address, a registration code goes out through the
    /// account service's sender; the real client names none and just gets status 0.
    pub(crate) async fn generate_verify(&self, email: Option<String>) -> Result<String, Failure> {
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
                refusal::log(&status, "verification code not sent");
                Err(Failure::Reply(codec::verify_status(1)))
            }
        }
    }

    /// REGISTER (4): status 0 with the ocid, 2 for a taken (or empty) e-mail, 1 otherwise.
    pub(crate) async fn register(
        &self,
        email: String,
        password: String,
        name: Option<String>,
        code: Option<String>,
    ) -> Result<String, Failure> {
        let refused =
            |state| Failure::Reply(codec::account_reply(code::REGISTER_RESPONSE, state, None));
        // The legacy e-mail column was UNIQUE and stored the box's text as typed, so an empty
        // box is one address, taken once used, whose account no login reaches (text without
        // `@` goes out as an ocid login): "Email Exist", and no account is created.
        if email.trim().is_empty() {
            return Err(refused(2));
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
                refusal::log(&status, "register refused");
                Err(refused(match refusal(&status) {
                    Refusal::EmailTaken => 2,
                    Refusal::NotFound | Refusal::Refused | Refusal::Outage => 1,
                }))
            }
        }
    }

    /// LOGIN (6): Login, then the user's event stream (open before the reply, so nothing after
    /// it is missed). A login on a connection already logged in ends the earlier one first.
    pub(crate) async fn login(
        &mut self,
        login_type: LoginType,
        account: String,
        password: String,
        pushes: bool,
    ) -> Result<String, Failure> {
        let refused =
            |state| Failure::Reply(codec::account_reply(code::LOGIN_RESPONSE, state, None));
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
                refusal::log(&status, "login refused");
                return Err(refused(login_state(&status)));
            }
        };
        self.log_out().await;
        let ocid = login
            .user
            .as_ref()
            .map(|u| u.ocid.clone())
            .unwrap_or_default();
        match self.start(login, password).await {
            Ok(()) => {
                self.pushes |= pushes;
                Ok(codec::account_reply(code::LOGIN_RESPONSE, 0, Some(&ocid)))
            }
            Err(status) => {
                tracing::warn!(%status, "event stream not opened at login; login ended");
                Err(refused(login_state(&status)))
            }
        }
    }

    /// Holds the login: counted among the user's live connections, then its event stream
    /// (the stream shows the user online). Without a stream there is no login: the session
    /// is ended again.
    async fn start(&mut self, login: LoginResponse, password: String) -> Result<(), Status> {
        let session = Arc::new(UserSession::new(self.backend.clone(), login));
        // Counted before Subscribe shows the user online (waits for a sign-out in flight).
        let live = self.live.enter(session.user_id()).await;
        match EventStream::open(Arc::clone(&session), SUBSCRIBE_PATIENCE).await {
            Ok(events) => {
                self.login = Login::In(Box::new(LoggedIn {
                    session,
                    password,
                    events,
                    live,
                }));
                self.handshake.done();
                Ok(())
            }
            Err(status) => {
                rosetta_bridge_kit::end_login(live, &session, rosetta_bridge_kit::OnClose::Logout)
                    .await;
                Err(status)
            }
        }
    }

    /// ACCOUNT_INFO (10): the requested fields of the account with that ocid (all of the
    /// seed's when none are named); an unknown ocid gets empty `data`.
    pub(crate) async fn account_info(
        &mut self,
        ocid: String,
        fields: Vec<String>,
    ) -> Result<String, Failure> {
        let session = self.session().ok_or_else(not_logged_in)?;
        let user = match lookup(&session, ocid).await {
            Ok(user) => user,
            Err(status) if refusal(&status) == Refusal::NotFound => {
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
    pub(crate) async fn unregister(&mut self) -> Result<String, Failure> {
        let Login::In(login) = std::mem::replace(&mut self.login, Login::Out) else {
            return Err(Failure::Reply(codec::unregister_reply(1)));
        };
        let deleted = login
            .session
            .call(
                DeleteAccountRequest {
                    password: login.password.clone(),
                    password_scheme: PasswordScheme::Sha256Hex.into(),
                },
                |backend, request| async move { backend.account().delete_account(request).await },
            )
            .await;
        match deleted {
            Ok(_) => {
                // The account is gone with its sessions and presence: nothing to sign out of,
                // only this connection's count ends (dropping the login).
                drop(login);
                Ok(codec::unregister_reply(0))
            }
            Err(status) => {
                refusal::log(&status, "unregister refused");
                self.login = Login::In(login);
                Err(Failure::Reply(codec::unregister_reply(1)))
            }
        }
    }
}

/// A refused login's status: 1 for the account, the password or the request, 2 when the
/// services failed ("server error").
fn login_state(status: &Status) -> i64 {
    match refusal(status) {
        Refusal::Outage => 2,
        Refusal::EmailTaken | Refusal::NotFound | Refusal::Refused => 1,
    }
}

pub(crate) fn not_logged_in() -> Failure {
    Failure::ErrorMsg("not logged in".to_owned())
}

/// The real client sends no nickname: use the e-mail's local part, at most 15 characters
/// as the original server's `name CHAR(15)`.
fn default_nickname(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    local.chars().take(15).collect()
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
}
