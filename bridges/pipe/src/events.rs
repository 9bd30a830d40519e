//! The logged-in user's side of the canonical services: the `Subscribe` stream turned into
//! pushes, and the stored unread messages (which the real server lost) for the login count
//! and `get_unread_message`.

use std::{collections::HashSet, sync::Mutex};

use rosetta_bridge_kit::{LoginMarks, UserSession};
use rosetta_proto::messaging::v1::{
    Announcement, ConversationKind, Event, Message, event, message, signal,
};
use tonic::Status;

use crate::{
    codec::{Reply, padded_uid},
    session::Socket,
};

/// The idempotency key of a message sent from a pipe client; it also carries the client's
/// message type, so a pipe recipient gets the type the sender chose.
pub(crate) fn client_message_id(kind: u32) -> String {
    format!("pipe-{kind}-{:032x}", rand::random::<u128>())
}

/// The pipe message type of `message`: the sender's own when a pipe client sent it, else
/// `0` (private) or `1` (group), the types the real server routed that way.
fn message_type(message: &Message) -> u32 {
    let group = matches!(message.to, Some(message::To::ToGroupId(_)));
    message
        .client_message_id
        .strip_prefix("pipe-")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(kind, _)| kind.parse::<u32>().ok())
        .filter(|kind| *kind <= 3 && (kind % 2 == 1) == group)
        .unwrap_or(u32::from(group))
}

/// The client's own time text, or the server time in the same digits-only shape the example
/// session uses (`yyyyMMddHHmmss`, UTC) for messages from clients that send none.
fn message_time(message: &Message) -> String {
    if !message.client_time.is_empty() {
        return message.client_time.clone();
    }
    server_time(message.sent_at_ms)
}

/// Server time in the example session's digits-only shape (`yyyyMMddHHmmss`, UTC).
fn server_time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_default()
}

/// An operator's announcement: a private message (type 0) from the reserved system uid
/// `00000`, which no account has (uids start at 1).
fn announcement_push(announcement: Announcement) -> Reply {
    Reply::PrivateMessage {
        kind: 0,
        from: padded_uid(rosetta_proto::system::USER_ID),
        time: server_time(announcement.sent_at_ms),
        data: announcement.text,
    }
}

/// Text, or the attachment's file id for messages other protocols sent without text.
fn message_data(message: &Message) -> String {
    if message.text.is_empty() {
        message.file_id.clone()
    } else {
        message.text.clone()
    }
}

/// A live message as the real server pushed it.
fn message_push(message: &Message) -> Reply {
    let (kind, time, data) = (
        message_type(message),
        message_time(message),
        message_data(message),
    );
    match message.to {
        Some(message::To::ToGroupId(group)) => Reply::GroupMessage {
            kind,
            group: group.to_string(),
            from: padded_uid(message.sender_id),
            time,
            data,
        },
        _ => Reply::PrivateMessage {
            kind,
            from: padded_uid(message.sender_id),
            time,
            data,
        },
    }
}

/// A stored message as `get_unread_message` lists it.
pub(crate) fn unread_line(message: &Message) -> Reply {
    match message.to {
        Some(message::To::ToGroupId(group)) => Reply::UnreadGroup {
            group,
            time: message_time(message),
            data: message_data(message),
        },
        _ => Reply::UnreadPrivate {
            from: message.sender_id,
            time: message_time(message),
            data: message_data(message),
        },
    }
}

/// The login's unread messages, announced by the login count, until the client fetches them
/// with `get_unread_message`. While they wait, a message pushed live is not marked read (a read
/// mark covers its whole conversation up to a seq and would swallow the waiting ones): it is
/// held, left out of the listing (the client has it already) and marked read with the rest.
#[derive(Default)]
pub(crate) struct Backlog(Mutex<Option<Vec<Message>>>);

impl Backlog {
    /// A backlog that waits for `get_unread_message` if the login found unread messages.
    pub(crate) fn at_login(unread: bool) -> Self {
        Self(Mutex::new(unread.then(Vec::new)))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Vec<Message>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a message just pushed live may be marked read now; if not, it is held.
    fn hold(&self, message: &Message) -> bool {
        match self.held().as_mut() {
            Some(held) => {
                held.push(message.clone());
                false
            }
            None => true,
        }
    }

    /// The ids of the messages pushed live while the backlog waits.
    pub(crate) fn pushed(&self) -> HashSet<i64> {
        self.held().iter().flatten().map(|m| m.id).collect()
    }

    /// Ends the wait: the held messages, to be marked read with the listed ones.
    pub(crate) fn release(&self) -> Vec<Message> {
        self.held().take().unwrap_or_default()
    }
}

/// Turns one event into its push, if the protocol has one, and writes it; `false` once a
/// write failed. Polled from the connection's own task (the event stream waits in its
/// `select!`), so an idle login costs no task of its own.
pub(crate) async fn push(
    me: i64,
    event: Event,
    socket: &Socket,
    backlog: &Backlog,
    marks: &LoginMarks,
) -> bool {
    let Some(push) = push_of(me, event.kind) else {
        return true;
    };
    // A message delivered live is not unread any more, unless the login's backlog holds
    // it. Its mark goes into the pending set before the push is written (memory only, no
    // wait), so a `get_unread_message` answering the push, which flushes the set first,
    // never lists it; the bridge's batcher moves the read state in the background.
    let (reply, unmarked) = match push {
        Push::Message(message) => {
            let unmarked = backlog.hold(&message) && !marks.try_record(&message);
            (message_push(&message), unmarked.then_some(message))
        }
        Push::Other(reply) => (reply, None),
    };
    if !socket.send(&reply).await {
        return false;
    }
    if let Some(message) = unmarked {
        // The set was full: after the push, flush it and record this one.
        marks.record(&message).await;
    }
    true
}

enum Push {
    Message(Message),
    Other(Reply),
}

/// The push an event becomes, if the protocol has one for it.
fn push_of(me: i64, kind: Option<event::Kind>) -> Option<Push> {
    Some(match kind? {
        event::Kind::Message(message) if message.sender_id != me && !message.recalled => {
            Push::Message(message)
        }
        event::Kind::FriendRequestReceived(request) => Push::Other(Reply::FriendRequest {
            from: padded_uid(request.from.map_or(0, |u| u.id)),
            note: request.note,
        }),
        event::Kind::JoinRequestReceived(request) => Push::Other(Reply::GroupRequest {
            from: padded_uid(request.applicant.map_or(0, |u| u.id)),
            group: request.group_id.to_string(),
            note: request.note,
        }),
        event::Kind::Announcement(announcement) => Push::Other(announcement_push(announcement)),
        event::Kind::Signal(signal) => match signal.kind? {
            signal::Kind::FileOffer(offer) => Push::Other(Reply::FileOffer {
                from: padded_uid(signal.from_user_id),
                rest: if offer.raw.is_empty() {
                    format!(
                        "{}|{}|{}|{}",
                        offer.host, offer.port, offer.file_name, offer.file_size
                    )
                } else {
                    offer.raw
                },
            }),
            _ => return None,
        },
        _ => return None,
    })
}

/// Every stored message the user has not read, private conversations first, each oldest
/// first; the user's own messages are left out.
pub(crate) async fn unread(session: &UserSession) -> Result<Vec<Message>, Status> {
    let kinds = [ConversationKind::Private, ConversationKind::Group];
    rosetta_bridge_kit::unread::unread(session, &kinds, usize::MAX).await
}

pub(crate) use rosetta_bridge_kit::unread::mark_read;

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: message::To, client_message_id: &str) -> Message {
        Message {
            sender_id: 124,
            to: Some(to),
            text: "hi".into(),
            client_message_id: client_message_id.into(),
            client_time: "t1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn pushes_keep_the_pipe_type_and_default_by_route() {
        let private = message(message::To::ToUserId(125), &client_message_id(2));
        assert_eq!(message_push(&private).render(), "message|2|00124|t1|hi");
        let group = message(message::To::ToGroupId(4001), &client_message_id(3));
        assert_eq!(message_push(&group).render(), "message|3|4001|00124|t1|hi");
        let foreign = message(message::To::ToGroupId(4001), "uuid-from-grpc");
        assert_eq!(
            message_push(&foreign).render(),
            "message|1|4001|00124|t1|hi"
        );
        // A type whose parity contradicts the route is not trusted.
        let odd_private = message(message::To::ToUserId(125), "pipe-1-abc");
        assert_eq!(message_push(&odd_private).render(), "message|0|00124|t1|hi");
    }

    #[test]
    fn announcements_come_from_the_system_uid() {
        let announcement = Announcement {
            id: 3,
            text: "maintenance at 22:00".into(),
            sent_at_ms: 1_567_679_400_000,
            expires_at_ms: 1_567_765_800_000,
        };
        assert_eq!(
            announcement_push(announcement).render(),
            "message|0|00000|20190905103000|maintenance at 22:00"
        );
    }

    #[test]
    fn messages_without_client_time_get_a_server_stamp() {
        let mut m = message(message::To::ToUserId(125), "x");
        m.client_time.clear();
        m.sent_at_ms = 1_567_679_400_000; // 2019-09-05 10:30:00 UTC
        assert_eq!(message_time(&m), "20190905103000");
    }
}
