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
use tokio::sync::watch;
use tonic::Status;

use crate::UserSession;

/// Longest wait for each call made at the end of a login: a close must not hang on a
/// service that does not answer.
pub const END_DEADLINE: Duration = Duration::from_secs(5);

/// Live connections per user on this bridge instance. Cheap to clone: clones share the count.
#[derive(Clone, Default)]
pub struct LiveLogins {
    slots: Arc<Mutex<HashMap<i64, Slot>>>,
}

#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) count: usize,
    /// Set while the last connection's sign-out is in flight: a new connection of the user
    /// waits for it, so the OFFLINE it sends cannot land after the new one showed them online.
    ending: Option<watch::Receiver<()>>,
}

impl LiveLogins {
    /// A table whose users are counted on `board` as `bridge`'s, for its status reports.
    pub fn reported(bridge: &'static str, board: &crate::Board) -> Self {
        let live = Self::default();
        board.logins(bridge, &live);
        live
    }

    /// Counts one more connection of `user` until the returned guard is ended or dropped;
    /// first waits for a sign-out of the user still in flight. Call it before the login shows
    /// the user online (before Subscribe or SetPresence ONLINE).
    pub async fn enter(&self, user: i64) -> Live {
        loop {
            let mut ending = {
                let mut slots = self.lock();
                let slot = slots.entry(user).or_default();
                match &slot.ending {
                    Some(ending) => ending.clone(),
                    None => {
                        slot.count += 1;
                        return Live {
                            logins: self.clone(),
                            user,
                            first: slot.count == 1,
                            counted: true,
                        };
                    }
                }
            };
            // The sender is dropped when the sign-out is over (bounded by its deadline).
            let _ = ending.changed().await;
        }
    }

    /// The table, for the status board (`crate::status`), which must not keep it alive.
    pub(crate) fn weak(&self) -> std::sync::Weak<Mutex<HashMap<i64, Slot>>> {
        Arc::downgrade(&self.slots)
    }

    /// How many connections of `user` are live here.
    pub fn count(&self, user: i64) -> usize {
        self.lock().get(&user).map_or(0, |slot| slot.count)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one connection of `user` less. If it was their last, marks the sign-out as in
    /// flight and returns what ends it ([`Self::signed_out`]).
    fn leave(&self, user: i64) -> Option<watch::Sender<()>> {
        let mut slots = self.lock();
        let slot = slots.get_mut(&user)?;
        slot.count = slot.count.saturating_sub(1);
        if slot.count > 0 {
            return None;
        }
        let (done, ending) = watch::channel(());
        slot.ending = Some(ending);
        Some(done)
    }

    /// The sign-out begun by [`Self::leave`] is over: connections waiting in `enter` go on.
    fn signed_out(&self, user: i64, done: watch::Sender<()>) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(&user) {
            slot.ending = None;
            if slot.count == 0 {
                slots.remove(&user);
            }
        }
        drop(done);
    }

    /// Uncounts a login dropped without [`end_login`] (no sign-out is sent).
    fn forget(&self, user: i64) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(&user) {
            slot.count = slot.count.saturating_sub(1);
            if slot.count == 0 && slot.ending.is_none() {
                slots.remove(&user);
            }
        }
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

    /// Stops counting; if this was the user's last connection, what ends their sign-out.
    fn release(mut self) -> Option<watch::Sender<()>> {
        self.counted = false;
        self.logins.leave(self.user)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.counted {
            self.logins.forget(self.user);
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
    let (user, logins) = (live.user, live.logins.clone());
    if let Some(done) = live.release() {
        report(
            user,
            "offline on close",
            set_presence(session, PresenceStatus::Offline),
        )
        .await;
        logins.signed_out(user, done);
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

    #[tokio::test]
    async fn the_last_of_several_connections_is_the_one_that_ends() {
        let logins = LiveLogins::default();
        let one = logins.enter(7).await;
        let two = logins.enter(7).await;
        assert!(one.first() && !two.first());
        assert!(one.release().is_none(), "another connection is live");
        assert_eq!(logins.count(7), 1);
        let done = two.release().expect("the last one");
        logins.signed_out(7, done);
        assert_eq!(logins.count(7), 0);
        assert!(logins.lock().is_empty(), "nothing kept for a user who left");
    }

    #[tokio::test]
    async fn a_dropped_login_is_uncounted() {
        let logins = LiveLogins::default();
        let kept = logins.enter(3).await;
        drop(logins.enter(3).await);
        assert_eq!(logins.count(3), 1);
        assert!(kept.release().is_some());
    }

    #[tokio::test]
    async fn a_new_connection_waits_for_the_sign_out_in_flight() {
        let logins = LiveLogins::default();
        let done = logins.enter(5).await.release().expect("last");
        let mut entering = Box::pin(logins.enter(5));
        assert!(
            futures_poll_once(&mut entering).await.is_none(),
            "waits while the OFFLINE call is in flight"
        );
        logins.signed_out(5, done);
        let live = entering.await;
        assert!(live.first());
    }

    /// Polls `future` once: its output if it is ready.
    async fn futures_poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
