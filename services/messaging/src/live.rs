//! Unstored traffic: presence calls, signals and typing notices.

use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    common::v1::Location,
    messaging::v1::{SendSignalRequest, Signal, Typing, event::Kind, send_signal_request},
    social::v1::{Presence, PresenceStatus},
};

use crate::{
    Messaging,
    conversations::{self, Target},
    policy,
};

impl Messaging {
    pub async fn set_presence(&self, me: i64, status: i32) -> ApiResult<()> {
        let status = match PresenceStatus::try_from(status) {
            Ok(
                s @ (PresenceStatus::Online | PresenceStatus::Invisible | PresenceStatus::Offline),
            ) => s,
            _ => {
                return Err(ApiError::invalid(
                    Reason::BadStatus,
                    "status must be online, invisible or offline",
                ));
            }
        };
        self.presences.set_status(me, status).await
    }

    pub async fn heartbeat(&self, me: i64, location: Option<Location>) -> ApiResult<()> {
        self.presences.touch(me, location.as_ref()).await
    }

    /// Presence as the caller may see it (the rule is `visibility`'s).
    pub async fn get_presence(&self, me: i64, users: &[i64]) -> ApiResult<Vec<Presence>> {
        if users.len() > 500 {
            return Err(ApiError::invalid(
                Reason::TooLarge,
                "at most 500 users per call",
            ));
        }
        self.presences.view(me, users).await
    }

    /// Relays a signal to a friend who is present right now.
    pub async fn send_signal(&self, me: i64, req: SendSignalRequest) -> ApiResult<()> {
        let kind = match req.kind {
            Some(send_signal_request::Kind::FileOffer(k)) => {
                rosetta_proto::messaging::v1::signal::Kind::FileOffer(k)
            }
            Some(send_signal_request::Kind::CallInvite(k)) => {
                rosetta_proto::messaging::v1::signal::Kind::CallInvite(k)
            }
            Some(send_signal_request::Kind::CallAnswer(k)) => {
                rosetta_proto::messaging::v1::signal::Kind::CallAnswer(k)
            }
            None => return Err(ApiError::invalid(Reason::SignalRequired, "name a signal")),
        };
        let now = rosetta_db::now_ms();
        self.policy
            .verify(me, Target::User(req.to_user_id), now)
            .await?;
        if !self.presences.is_present(req.to_user_id).await? {
            return Err(ApiError::precondition(
                Reason::Offline,
                "the recipient is offline",
            ));
        }
        let signal = Signal {
            from_user_id: me,
            kind: Some(kind),
        };
        self.events
            .publish_live(&[req.to_user_id], Kind::Signal(signal))
            .await;
        Ok(())
    }

    /// Tells the other participants that the caller is typing.
    pub async fn send_typing(&self, me: i64, target: Target) -> ApiResult<()> {
        let others = match target {
            Target::User(other) => {
                self.policy.verify(me, target, rosetta_db::now_ms()).await?;
                vec![other]
            }
            // Typing needs membership, not the right to send (a muted member may type): read
            // from the tables, as the member list has to be.
            Target::Group(group) => {
                policy::membership(&self.db, group, me).await?;
                let mut members = policy::group_members(&self.db, group).await?;
                members.retain(|&m| m != me);
                members
            }
        };
        // Recipients see the conversation from their side: with the caller, or the group.
        let conversation = match target {
            Target::User(_) => Target::User(me),
            group @ Target::Group(_) => group,
        };
        let event = Kind::Typing(Typing {
            user_id: me,
            conversation: Some(conversations::to_ref(conversation)),
        });
        self.events.publish_live(&others, event).await;
        Ok(())
    }
}
