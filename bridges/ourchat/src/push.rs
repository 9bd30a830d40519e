//! Events → pushes, for connections that read them: others' messages as TEXT (0), being
//! added to a group as NEW_SESSION (9), operators' announcements as TEXT (0) from the
//! reserved system ocid.

use rosetta_bridge_kit::UserSession;
use rosetta_proto::{
    account::v1::GetProfilesRequest,
    messaging::v1::{Event, MessageKind, event, message},
};

use crate::{
    codec::{self, Target},
    session::{Connection, Reply},
};

impl Connection {
    /// The frame an event becomes for this client, if any: others' messages (0) and being
    /// added to a group by someone else, or joining one by an invitation (9).
    pub(crate) async fn push(&mut self, event: Event) -> Option<Reply> {
        if !self.pushes {
            return None;
        }
        let session = self.session()?;
        let me = session.user_id();
        let time = event.at_ms / 1000;
        match event.kind? {
            event::Kind::Message(m) if m.sender_id != me && !m.recalled => {
                let target = match m.to? {
                    message::To::ToUserId(_) => Target::User(session.user().ocid.clone()),
                    message::To::ToGroupId(group) => Target::Group(group),
                };
                let from = self.ocid_of(&session, m.sender_id).await;
                let text = if m.text.is_empty() {
                    placeholder(m.kind()).to_owned()
                } else {
                    m.text
                };
                Some((
                    "text",
                    codec::text_push(m.sent_at_ms / 1000, m.id, &from, &target, &text),
                ))
            }
            // From the system's ocid, which no account is given; message id 0 (no stored
            // message).
            event::Kind::Announcement(announcement) => Some((
                "text",
                codec::text_push(
                    announcement.sent_at_ms / 1000,
                    0,
                    rosetta_proto::system::OCID,
                    &Target::User(session.user().ocid.clone()),
                    &announcement.text,
                ),
            )),
            // An invitation accepted elsewhere (the inviter is the actor).
            event::Kind::MemberJoined(change)
                if change.user_id == me && change.actor_id != change.user_id =>
            {
                Some((
                    "new_session",
                    codec::new_session(Some(change.group_id), time, ""),
                ))
            }
            event::Kind::MembersAdded(added)
                if added.user_ids.contains(&me) && added.actor_id != me =>
            {
                Some((
                    "new_session",
                    codec::new_session(Some(added.group_id), time, ""),
                ))
            }
            _ => None,
        }
    }

    /// The ocid of a user id; the decimal id if the profile cannot be read (logged).
    async fn ocid_of(&mut self, session: &UserSession, user_id: i64) -> String {
        if let Some(ocid) = self.ocids.ocid(user_id) {
            return ocid.to_owned();
        }
        let request = GetProfilesRequest {
            user_ids: vec![user_id],
        };
        let profile = session
            .call(request, |backend, request| async move {
                backend.account().get_profiles(request).await
            })
            .await
            .map(|profiles| profiles.users.into_iter().next());
        let ocid = match profile {
            Ok(Some(user)) => user.ocid,
            // A sender whose account is gone: still pushed, under the id.
            Ok(None) => return user_id.to_string(),
            Err(status) => {
                tracing::warn!(user_id, %status, "sender's profile not read; pushed under the id");
                return user_id.to_string();
            }
        };
        self.ocids.learn(user_id, &ocid);
        ocid
    }
}

/// Text shown for messages that carry a file (codes 1–3 are not defined yet).
fn placeholder(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Image => "[image]",
        MessageKind::Audio => "[audio]",
        MessageKind::File => "[file]",
        MessageKind::Text | MessageKind::Unspecified => "",
    }
}
