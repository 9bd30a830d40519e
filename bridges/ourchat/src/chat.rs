//! Chat commands: TEXT (0, no reply) and NEW_SESSION (8 → 9).

use rosetta_bridge_kit::UserSession;
use rosetta_proto::{
    account::v1::{LookupUserRequest, User},
    common::v1::{UserRef, user_ref},
    messaging::v1::{MessageKind, SendMessageRequest, send_message_request},
    social::v1::CreateGroupRequest,
};
use tonic::Status;

use crate::{
    account::not_logged_in,
    codec::{self, Target},
    refusal::{self, Failure, Refusal, details, refusal},
    session::{Connection, now_secs},
};

/// Most members one new-session request may name.
const MAX_MEMBERS: usize = 200;

impl Connection {
    /// TEXT (0) to a user (`private_id`, an ocid) or a group (`group_id`/`session_id`); the
    /// protocol has no reply to it, only errors.
    pub(crate) async fn text(&mut self, target: Target, msg: String) -> Result<(), Failure> {
        let session = self.session().ok_or_else(not_logged_in)?;
        let to = match target {
            Target::User(ocid) => send_message_request::To::ToUserId(match self.ocids.id(&ocid) {
                Some(id) => id,
                None => {
                    let user = lookup(&session, ocid).await?;
                    self.ocids.learn(user.id, &user.ocid);
                    user.id
                }
            }),
            Target::Group(group) => send_message_request::To::ToGroupId(group),
        };
        let message = SendMessageRequest {
            to: Some(to),
            kind: MessageKind::Text.into(),
            text: msg,
            client_message_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        session
            .call(message, |backend, request| async move {
                backend.messaging().send_message(request).await
            })
            .await?;
        Ok(())
    }

    /// NEW_SESSION (8): a group with the named members (the caller's own ocid may be among
    /// them), replied to in both the seed's and the later document's form.
    pub(crate) async fn new_session(&mut self, members: Vec<String>) -> Result<String, Failure> {
        let failed = |why: &str| Failure::Reply(codec::new_session(None, now_secs(), why));
        let session = self.session().ok_or_else(|| failed("not logged in"))?;
        if members.len() > MAX_MEMBERS {
            return Err(failed("too many members"));
        }
        let me = session.user();
        let mut ids = Vec::new();
        let mut names = vec![display_name(me)];
        for ocid in members {
            if ocid == me.ocid {
                continue;
            }
            let user = lookup(&session, ocid.clone()).await.map_err(|status| {
                refusal::log(&status, "new session member not found");
                match refusal(&status) {
                    Refusal::NotFound => failed(&format!("unknown member {ocid}")),
                    Refusal::EmailTaken | Refusal::Refused | Refusal::Outage => {
                        failed(&details(&status))
                    }
                }
            })?;
            if !ids.contains(&user.id) {
                ids.push(user.id);
                names.push(display_name(&user));
            }
        }
        let group = CreateGroupRequest {
            name: session_name(&names),
            member_ids: ids,
            // The client cannot show an invitation: strangers are refused, not invited.
            friends_only: true,
            ..Default::default()
        };
        let group = session
            .call(group, |backend, request| async move {
                backend.social().create_group(request).await
            })
            .await
            .map_err(|status| {
                refusal::log(&status, "new session refused");
                failed(&details(&status))
            })?;
        Ok(codec::new_session(Some(group.id), now_secs(), ""))
    }
}

/// The account with that ocid.
pub(crate) async fn lookup(session: &UserSession, ocid: String) -> Result<User, Status> {
    let request = LookupUserRequest {
        user: Some(UserRef {
            r#ref: Some(user_ref::Ref::Ocid(ocid)),
        }),
    };
    session
        .call(request, |backend, request| async move {
            backend.account().lookup_user(request).await
        })
        .await
}

fn display_name(user: &User) -> String {
    if user.nickname.is_empty() {
        user.ocid.clone()
    } else {
        user.nickname.clone()
    }
}

/// A group name from its members' names, within the service's 64 characters.
fn session_name(names: &[String]) -> String {
    let name: String = names.join(", ").chars().take(64).collect();
    if name.trim().is_empty() {
        "OurChat session".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_the_service() {
        assert_eq!(session_name(&["a".into(), "b".into()]), "a, b");
        assert_eq!(session_name(&["x".repeat(100)]).chars().count(), 64);
        assert_eq!(session_name(&[" ".into()]), "OurChat session");
    }
}
