//! The bound user's canonical events as CloudChat pushes:
//!
//! | event | push |
//! |---|---|
//! | Message (private, from somebody else) | MESSAGE_RECEIVED_OTHER |
//! | FriendRequestReceived | ADD_FRIEND_REQUEST |
//! | FriendRequestAnswered (accepted) | ACCEPT_FRIEND_REQUEST + CONTACT_ADDED (GetPresence) |
//! | FriendRequestAnswered (refused, withdrawn) | REFUSE_FRIEND_REQUEST |
//! | FriendRemoved (by the other) | DELETED_BY_CONTACT |
//! | Announcement | MESSAGE_RECEIVED_OTHER from the system contact 0 |

use rosetta_bridge_kit::UserSession;
use rosetta_proto::{
    messaging::v1::{Announcement, event, message},
    social::v1::RequestState,
};
use serde_json::json;

use crate::codec::{self, ContentKind, MessageView};

use super::{
    Out,
    chat::message_value,
    contacts::{contact_added, friend_request_value},
    reply,
};

/// What an event shows the session's user.
pub(super) async fn of(session: &UserSession, kind: Option<event::Kind>) -> Vec<Out> {
    let me = session.user_id();
    match kind {
        Some(event::Kind::Message(m))
            if m.sender_id != me && matches!(m.to, Some(message::To::ToUserId(_))) =>
        {
            vec![reply("MESSAGE_RECEIVED_OTHER", message_value(&m, false))]
        }
        Some(event::Kind::FriendRequestReceived(fr)) => {
            vec![reply("ADD_FRIEND_REQUEST", friend_request_value(&fr))]
        }
        Some(event::Kind::FriendRequestAnswered(fr)) => match RequestState::try_from(fr.state) {
            Ok(RequestState::Accepted) => {
                let target = fr.to.unwrap_or_default();
                vec![
                    reply("ACCEPT_FRIEND_REQUEST", json!({"id": fr.id})),
                    contact_added(session, &target).await,
                ]
            }
            Ok(RequestState::Rejected | RequestState::Cancelled) => {
                vec![reply("REFUSE_FRIEND_REQUEST", json!({"id": fr.id}))]
            }
            _ => Vec::new(),
        },
        Some(event::Kind::FriendRemoved(removed)) if removed.removed_by != me => {
            vec![reply(
                "DELETED_BY_CONTACT",
                json!({"contactId": removed.removed_by}),
            )]
        }
        Some(event::Kind::Announcement(announcement)) => vec![reply(
            "MESSAGE_RECEIVED_OTHER",
            announcement_value(me, &announcement),
        )],
        _ => Vec::new(),
    }
}

/// An operator's announcement as a text message from the system contact, id 0, which no
/// account has (ids start at 1). Message id 0, as the original server's pushes carried.
fn announcement_value(me: i64, announcement: &Announcement) -> serde_json::Value {
    codec::message_object(&MessageView {
        id: 0,
        sender_id: rosetta_proto::system::USER_ID,
        receiver_id: me,
        content: &announcement.text,
        sent_at_secs: announcement.sent_at_ms.div_euclid(1000),
        read: false,
        kind: ContentKind::Text,
    })
}
