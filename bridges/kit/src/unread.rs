//! The stored messages a user has not read yet, and moving their read marks: what a bridge
//! delivers at login as the backlog of messages that arrived while the user was away, and
//! marks read once delivered (live or from the backlog) so that the next login does not
//! deliver it again.

use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref},
    messaging::v1::{
        ConversationKind, GetUnreadCountsRequest, ListMessagesRequest, Message, message,
    },
};
use tonic::Status;

use crate::UserSession;

/// Messages read per `ListMessages` call.
const LIST_LIMIT: u32 = 500;

/// Every stored message the user has not read in conversations of `kinds`, grouped by kind in
/// the order given, each conversation oldest first; the user's own and recalled messages are
/// left out. At most `max` messages (the oldest) are returned: the rest stay unread.
pub async fn unread(
    session: &UserSession,
    kinds: &[ConversationKind],
    max: usize,
) -> Result<Vec<Message>, Status> {
    let me = session.user_id();
    let messaging = session.backend().messaging();
    let counts = messaging
        .clone()
        .get_unread_counts(session.request(GetUnreadCountsRequest {}).await?)
        .await?
        .into_inner();
    let mut conversations: Vec<_> = counts
        .conversations
        .into_iter()
        .filter_map(|c| Some((kinds.iter().position(|k| *k as i32 == c.kind)?, c)))
        .collect();
    conversations.sort_by_key(|(rank, _)| *rank);
    let mut unread = Vec::new();
    for (_, conversation) in conversations {
        let mut after = conversation.last_read_seq;
        while unread.len() < max {
            let request = session
                .request(ListMessagesRequest {
                    conversation: conversation.r#ref,
                    before_seq: 0,
                    after_seq: after,
                    limit: LIST_LIMIT,
                })
                .await?;
            let page = messaging.clone().list_messages(request).await?.into_inner();
            after = page.messages.last().map_or(after, |m| m.seq);
            let room = max - unread.len();
            unread.extend(
                page.messages
                    .into_iter()
                    .filter(|m| m.sender_id != me && !m.recalled)
                    .take(room),
            );
            if !page.has_more {
                break;
            }
        }
    }
    Ok(unread)
}

/// The conversation `message` belongs to, from its recipient's side.
pub fn conversation_of(message: &Message) -> Option<ConversationRef> {
    let r#ref = match message.to? {
        message::To::ToGroupId(group) => conversation_ref::Ref::GroupId(group),
        message::To::ToUserId(_) => conversation_ref::Ref::UserId(message.sender_id),
    };
    Some(ConversationRef { r#ref: Some(r#ref) })
}

/// Moves the user's read marks past `messages` (received ones): one `MarkRead` per
/// conversation. Failures are logged; the messages then stay unread.
pub async fn mark_read(session: &UserSession, messages: &[Message]) {
    let mut marks: Vec<(ConversationRef, u64)> = Vec::new();
    for message in messages {
        let Some(conversation) = conversation_of(message) else {
            continue;
        };
        match marks.iter_mut().find(|(c, _)| *c == conversation) {
            Some((_, seq)) => *seq = (*seq).max(message.seq),
            None => marks.push((conversation, message.seq)),
        }
    }
    for (conversation, up_to_seq) in marks {
        crate::read_marks::mark(session, conversation, up_to_seq).await;
    }
}
