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
use rosetta_proto::account::v1::{
    GetMyProfileRequest, LoginRequest, PasswordScheme, login_request::Identifier,
};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

use crate::{
    lobby::Lobby,
    refusal::{Refusal, refusal},
};

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
    /// The server is in maintenance: no new logins.
    Maintenance,
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

/// Whether a remembered login was confirmed within [`REVERIFY_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

pub struct Logins {
    backend: Backend,
    lobby: Arc<Lobby>,
    /// Per-process key of the digests, so they are useless outside this process.
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
    /// Per user name, the lock its credential checks take in turn.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Logins {
    pub fn new(backend: Backend, lobby: Arc<Lobby>) -> Self {
        Self {
            backend,
            lobby,
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
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
        if recheck == Recheck::OnRefusal
            && let Some((session, Fresh::Yes)) = self.remembered(name, &digest)
        {
            return Ok(session);
        }
        // One check per user at a time: two connections of a user arriving together (an
        // upload and a listing, a chat line and a download) would otherwise both log in, and
        // the second login would replace, and log out, the session the first is using.
        let _turn = self.turn(name).await;
        let found = match self.remembered(name, &digest) {
            Some((session, Fresh::Yes)) if recheck == Recheck::OnRefusal => Some(session),
            // Confirmed live with the account service (a password change ends it): kept, and
            // fresh again, rather than replaced by a new login.
            Some((session, _)) => match is_live(&session).await {
                Ok(true) => {
                    self.verified(name, &session);
                    Some(session)
                }
                Ok(false) => {
                    self.forget(name, &session);
                    None
                }
                Err(status) => return Err(AuthError::Backend(status)),
            },
            None => None,
        };
        match found {
            Some(session) => Ok(session),
            None => self.login(name, password, peer, client, digest).await,
        }
    }

    /// Waits for `name`'s turn to check credentials; it lasts until the guard drops.
    async fn turn<'a>(&'a self, name: &'a str) -> Turn<'a> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(turns.entry(name.to_owned()).or_default())
        };
        Turn {
            logins: self,
            name,
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Marks `name`'s remembered `session` as just confirmed.
    fn verified(&self, name: &str, session: &Arc<UserSession>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(name)
            && Arc::ptr_eq(&entry.session, session)
        {
            entry.verified_at = Instant::now();
        }
    }

    /// The session remembered for `name` now, whatever the password it was checked with.
    pub fn current(&self, name: &str) -> Option<Arc<UserSession>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(name).map(|e| Arc::clone(&e.session))
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
            .map_err(|status| match refusal(&status) {
                // A name that is nobody's (NOT_FOUND) or no user name at all, or an empty
                // password: wrong credentials to the client.
                Refusal::Credentials
                | Refusal::NotInLobby
                | Refusal::BadInput
                | Refusal::NameTaken => AuthError::BadCredentials,
                Refusal::Maintenance => AuthError::Maintenance,
                _ => AuthError::Backend(status),
            })?
            .into_inner();
        let session = Arc::new(UserSession::new(self.backend.clone(), login));
        self.lobby
            .remember_name(session.user_id(), &session.user().username);
        self.lobby
            .join(&session)
            .await
            .map_err(AuthError::Backend)?;
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

    /// The remembered session of this (name, password) pair, and whether it was confirmed
    /// recently.
    fn remembered(&self, name: &str, digest: &[u8; 32]) -> Option<(Arc<UserSession>, Fresh)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(name).filter(|e| e.digest == *digest).map(|e| {
            let fresh = if e.verified_at.elapsed() < REVERIFY_AFTER {
                Fresh::Yes
            } else {
                Fresh::No
            };
            (e.session.clone(), fresh)
        })
    }
}

/// One user's turn to check credentials (see [`Logins::authenticate`]).
struct Turn<'a> {
    logins: &'a Logins,
    name: &'a str,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    /// Ends the turn, and drops the user's lock when nobody else holds or awaits it (a lock
    /// is only cloned under the table's lock, so the count cannot grow meanwhile).
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = self.logins.turns.lock().unwrap_or_else(|e| e.into_inner());
        if turns
            .get(self.name)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(self.name);
        }
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
