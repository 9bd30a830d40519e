//! The end of a login, the same on every bridge: the user goes offline as soon as their last
//! connection on this bridge instance closes (not when the presence timeout lapses), and the
//! canonical session is logged out where the protocol's close ends it.
//!
//! Connections are counted per user in [`LiveLogins`] (one per bridge instance): a user with
//! two windows open stays online until the second closes. The count is held by a [`Live`]
//! guard, so a login dropped on any path (an error, an account deleted) is uncounted too;
//! [`end_login`] is the path that also tells the services.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rosetta_proto::{messaging::v1::SetPresenceRequest, social::v1::PresenceStatus};
use tonic::Status;

use crate::UserSession;

/// Longest wait for each call made at the end of a login: a close must not hang on a
/// service that does not answer.
pub const END_DEADLINE: Duration = Duration::from_secs(5);

/// Live connections per user on this bridge instance. Cheap to clone: clones share the count.
#[derive(Clone, Default)]
pub struct LiveLogins {
    counts: Arc<Mutex<HashMap<i64, usize>>>,
}

impl LiveLogins {
    /// Counts one more connection of `user` until the returned guard is ended or dropped.
    pub fn enter(&self, user: i64) -> Live {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(user).or_default();
        *count += 1;
        Live {
            logins: self.clone(),
            user,
            first: *count == 1,
            counted: true,
        }
    }

    /// How many connections of `user` are live here.
    pub fn count(&self, user: i64) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&user).copied().unwrap_or(0)
    }

    /// Counts one connection of `user` less; true if it was their last.
    fn leave(&self, user: i64) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(count) = counts.get_mut(&user) else {
            return false;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(&user);
            return true;
        }
        false
    }
}

/// One counted connection of a user (see [`LiveLogins::enter`]).
pub struct Live {
    logins: LiveLogins,
    user: i64,
    first: bool,
    counted: bool,
}

impl Live {
    /// Whether this was the user's first live connection here when it was counted.
    pub fn first(&self) -> bool {
        self.first
    }

    pub fn user_id(&self) -> i64 {
        self.user
    }

    /// Stops counting; true if this was the user's last connection.
    fn release(mut self) -> bool {
        self.counted = false;
        self.logins.leave(self.user)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.counted {
            self.logins.leave(self.user);
        }
    }
}

/// What closing the connection does to the canonical session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnClose {
    /// The protocol's close ends the session: Logout (its tokens stop working everywhere).
    Logout,
    /// The session outlives the connection (the protocol reuses it, e.g. remembered logins).
    KeepSession,
}

/// Ends one connection's login. The caller drops the login's event stream first, so that no
/// resubscription shows the user online again. When this was the user's last connection on
/// this instance they are shown OFFLINE now; with [`OnClose::Logout`] the session is ended.
/// Each call has [`END_DEADLINE`]; failures are logged with the user and the step.
pub async fn end_login(live: Live, session: &UserSession, on_close: OnClose) {
    let user = live.user;
    if live.release() {
        report(
            user,
            "offline on close",
            set_presence(session, PresenceStatus::Offline),
        )
        .await;
    }
    if on_close == OnClose::Logout {
        report(user, "logout on close", session.logout()).await;
    }
}

/// Sets the user's presence status (SetPresence), with [`END_DEADLINE`].
pub async fn set_presence(session: &UserSession, status: PresenceStatus) -> Result<(), Status> {
    let call = async {
        let request = session
            .request(SetPresenceRequest {
                status: status.into(),
            })
            .await?;
        session.backend().messaging().set_presence(request).await?;
        Ok(())
    };
    deadline(call).await
}

/// `call`, failed with DEADLINE_EXCEEDED when it takes longer than [`END_DEADLINE`].
async fn deadline<F: Future<Output = Result<(), Status>>>(call: F) -> Result<(), Status> {
    tokio::time::timeout(END_DEADLINE, call)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer within the deadline")))
}

async fn report(user: i64, step: &'static str, call: impl Future<Output = Result<(), Status>>) {
    if let Err(status) = deadline(call).await {
        tracing::warn!(user, %status, "{step} failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_several_connections_is_the_one_that_ends() {
        let logins = LiveLogins::default();
        let one = logins.enter(7);
        let two = logins.enter(7);
        assert!(one.first() && !two.first());
        assert!(!one.release(), "another connection is live");
        assert_eq!(logins.count(7), 1);
        assert!(two.release(), "the last one");
        assert_eq!(logins.count(7), 0);
    }

    #[test]
    fn a_dropped_login_is_uncounted() {
        let logins = LiveLogins::default();
        let kept = logins.enter(3);
        drop(logins.enter(3));
        assert_eq!(logins.count(3), 1);
        assert!(kept.release());
    }
}
