//! Stored rows to API messages.

use rosetta_db::entity::messaging::message;
use rosetta_proto::messaging::v1::{Message, message::To};

use crate::log::to_u64;

pub fn message(row: &message::Model) -> Message {
    let to = match (row.to_user_id, row.to_group_id) {
        (_, Some(group)) => Some(To::ToGroupId(group)),
        (Some(user), None) => Some(To::ToUserId(user)),
        (None, None) => None,
    };
    // Recalled messages keep their place but lose their content.
    let (text, file_id) = if row.recalled {
        (String::new(), String::new())
    } else {
        (row.text.clone(), row.file_id.clone())
    };
    Message {
        id: row.id,
        conversation_id: row.conversation_id,
        seq: to_u64(row.seq),
        sender_id: row.sender_id,
        to,
        kind: i32::from(row.kind),
        text,
        file_id,
        reply_to_id: row.reply_to_id,
        client_message_id: row.client_message_id.clone(),
        client_time: row.client_time.clone(),
        sent_at_ms: row.sent_at_ms,
        recalled: row.recalled,
    }
}
