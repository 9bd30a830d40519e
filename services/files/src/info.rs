//! Rows as the API shows them.

use rosetta_db::entity::files::file;
use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref::Ref},
    files::v1::FileInfo,
};

pub(crate) fn file_info(row: &file::Model) -> FileInfo {
    let conversation = match (row.conv_user_id, row.conv_group_id) {
        (Some(user), _) => Some(Ref::UserId(user)),
        (None, Some(group)) => Some(Ref::GroupId(group)),
        (None, None) => None,
    };
    FileInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        folder: row.folder.clone(),
        size: u64::try_from(row.size).unwrap_or(0),
        sha256: row.sha256.clone(),
        content_type: row.content_type.clone(),
        owner_id: row.owner_id,
        visibility: i32::from(row.visibility),
        conversation: conversation.map(|r| ConversationRef { r#ref: Some(r) }),
        created_at_ms: row.created_at_ms,
    }
}
