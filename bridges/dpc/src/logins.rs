//! Credentials to sessions. DPC clients send the plain password with every chat line and file
//! request; checking each against the account service would cost an argon2 hash per line. A
//! successful login is therefore remembered as a keyed SHA-256 digest of (name, password) next
//! to its session, so the plain password is dropped as soon as the frame is handled.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rosetta_bridge_kit::{Backend, UserSession};
use rosetta_proto::{
    account::v1::{GetMyProfileRequest, LoginRequest, PasswordScheme, login_request::Identifier},
    social::v1::JoinPublicGroupRequest,
};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

use crate::{LOBBY_SLUG, lobby::Lobby, reason};

/// A remembered login is checked against the account service again after this long. A
/// password change or recovery elsewhere ends the remembered session at once; the bridge sees
/// that on the session's next call (chat lines) or by asking first (`Recheck::Now`).
const REVERIFY_AFTER: Duration = Duration::from_secs(10 * 60);
/// Above this many remembered users, stale entries are dropped on insertion.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug)]
pub enum AuthError {
    /// Unknown user, wrong password or too many failed attempts.
    BadCredentials,
    /// The services could not answer.
    Backend(Status),
}

struct Entry {
    digest: [u8; 32],
    session: Arc<UserSession>,
    verified_at: Instant,
}

/// When a remembered login is confirmed live with the account service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Not up front: chat lines, whose own call is refused if the session was ended (the
    /// caller then forgets the login and authenticates again).
    OnRefusal,
    /// Before it is used: the auth server's login and file requests, rare enough to afford
    /// the call.
    Now,
}

pub struct Logins {
    backend: Backend,
    lobby: Arc<Lobby>,
    /// Per-process key of the digests, so they are useless outside this process.
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
}

impl Logins {
    pub fn new(backend: Backend, lobby: Arc<Lobby>) -> Self {
        Self {
            backend,
            lobby,
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, name: &str, password: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.key);
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name.as_bytes());
        hash.update(password.as_bytes());
        hash.finalize().into()
    }

    /// The session of `name` if `password` is theirs: from memory when this pair logged in
    /// recently (confirmed live first if `recheck` says so), otherwise by a login through the
    /// account service (which also makes the user a member of the DPC lobby). A remembered
    /// session found ended (a password change or recovery ends every other session) is
    /// forgotten and the password checked afresh, so the old password stops working at once.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        peer: SocketAddr,
        client: &Backend,
        recheck: Recheck,
    ) -> Result<Arc<UserSession>, AuthError> {
        let digest = self.digest(name, password);
        if let Some(session) = self.remembered(name, &digest) {
            match recheck {
                Recheck::OnRefusal => return Ok(session),
                Recheck::Now => match is_live(&session).await {
                    Ok(true) => return Ok(session),
                    Ok(false) => self.forget(name, &session),
                    Err(status) => return Err(AuthError::Backend(status)),
                },
            }
        }
        self.login(name, password, peer, client, digest).await
    }

    /// Drops the remembered login of `name` if it still holds `session` (whose calls were
    /// refused as unauthenticated: the session was ended elsewhere).
    pub fn forget(&self, name: &str, session: &Arc<UserSession>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(name)
            .is_some_and(|e| Arc::ptr_eq(&e.session, session))
        {
            entries.remove(name);
        }
    }

    /// A login through the account service, remembered on success.
    async fn login(
        &self,
        name: &str,
        password: &str,
        peer: SocketAddr,
        client: &Backend,
        digest: [u8; 32],
    ) -> Result<Arc<UserSession>, AuthError> {
        let login = client
            .login(LoginRequest {
                identifier: Some(Identifier::Username(name.to_owned())),
                password: password.to_owned(),
                password_scheme: PasswordScheme::Plain.into(),
                client: format!("bridge-dpc {peer}"),
            })
            .await
            .map_err(|status| match status.code() {
                Code::Unauthenticated | Code::NotFound | Code::InvalidArgument => {
                    AuthError::BadCredentials
                }
                _ if reason(&status).as_deref() == Some("THROTTLED") => AuthError::BadCredentials,
                _ => AuthError::Backend(status),
            })?
            .into_inner();
        let session = Arc::new(UserSession::new(self.backend.clone(), login));
        self.lobby
            .remember_name(session.user_id(), &session.user().username);
        let group = self
            .backend
            .social()
            .join_public_group(
                session
                    .request(JoinPublicGroupRequest {
                        slug: LOBBY_SLUG.into(),
                        name: String::new(),
                    })
                    .await
                    .map_err(AuthError::Backend)?,
            )
            .await
            .map_err(AuthError::Backend)?
            .into_inner();
        self.lobby.found(group.id, &session);
        let replaced = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= PRUNE_ABOVE {
                entries.retain(|_, e| e.verified_at.elapsed() < REVERIFY_AFTER);
            }
            entries.insert(
                name.to_owned(),
                Entry {
                    digest,
                    session: session.clone(),
                    verified_at: Instant::now(),
                },
            )
        };
        // The replaced session is no longer handed out: end it rather than let it linger.
        if let Some(old) = replaced {
            tokio::spawn(async move {
                if let Err(status) = old.session.logout().await {
                    tracing::debug!(%status, "logout of a replaced session failed");
                }
            });
        }
        Ok(session)
    }

    fn remembered(&self, name: &str, digest: &[u8; 32]) -> Option<Arc<UserSession>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(name)
            .filter(|e| e.digest == *digest && e.verified_at.elapsed() < REVERIFY_AFTER)
            .map(|e| e.session.clone())
    }
}

/// Whether the account service still accepts `session` (false once it was ended elsewhere).
async fn is_live(session: &UserSession) -> Result<bool, Status> {
    let request = match session.request(GetMyProfileRequest {}).await {
        Ok(request) => request,
        // The refresh before an expiring access token was refused: the session is over.
        Err(status) if status.code() == Code::Unauthenticated => return Ok(false),
        Err(status) => return Err(status),
    };
    match session.backend().account().get_my_profile(request).await {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::Unauthenticated => Ok(false),
        Err(status) => Err(status),
    }
}
