//! Private messages and files:
//!
//! | CloudChat | canonical | reply |
//! |---|---|---|
//! | LOAD_MESSAGES | ListMessages (all pages, newest first) | MESSAGES_LOADED |
//! | SEND_MESSAGE | SendMessage (text) | MESSAGE_RECEIVED_SELF / MESSAGE_SEND_FAILED (with the tempId) |
//! | SEND_FILE / SEND_IMAGE | Upload (to the conversation), SendMessage (file / image) | MESSAGE_RECEIVED_SELF / MESSAGE_SEND_FAILED |
//! | UPLOAD_FILE | Upload (private) | FILE_UPLOADED / FILE_UPLOADED_FAILED (with the filePath) |
//! | MARK_READ | MarkRead | none |
//! | CLEAR_MESSAGES | ClearHistory | MESSAGES_CLEARD |

use std::sync::Mutex;

use rosetta_bridge_kit::{UserSession, all_pages};
use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref},
    files::v1::{UploadMetadata, UploadRequest, Visibility, upload_request::Part},
    messaging::v1::{
        ClearHistoryRequest, ListMessagesRequest, MarkReadRequest, Message, MessageKind,
        SendMessageRequest, message, send_message_request,
    },
};
use serde_json::{Value, json};
use tonic::Status;

use super::{
    MAX_PAGES, PAGE, Replies,
    refusals::{Step, failed},
    reply,
};
use crate::codec::{self, ContentKind, MessageView};

pub(super) async fn load(session: &UserSession, target_id: i64) -> Replies {
    let messages = history(session, target_id)
        .await
        .map_err(|status| failed(session.user_id(), Step::Listing, &status))?;
    Ok(vec![reply(
        "MESSAGES_LOADED",
        json!({"targetId": target_id, "messages": messages}),
    )])
}

pub(super) async fn send_text(
    session: &UserSession,
    temp_id: String,
    receiver_id: i64,
    content: String,
) -> Replies {
    let send = SendMessageRequest {
        to: Some(send_message_request::To::ToUserId(receiver_id)),
        kind: MessageKind::Text as i32,
        text: content,
        client_message_id: client_message_id(),
        ..Default::default()
    };
    send_message(session, send, temp_id).await
}

/// SEND_FILE / SEND_IMAGE: the inline content is stored as a file of the conversation, and
/// the message names it.
pub(super) async fn send_file(
    session: &UserSession,
    temp_id: String,
    receiver_id: i64,
    name: String,
    content: String,
    image: bool,
) -> Replies {
    let file_id = upload(
        session,
        &name,
        content.into_bytes(),
        Some(private(receiver_id)),
    )
    .await
    .map_err(|status| failed(session.user_id(), Step::Send, &status))?;
    let send = SendMessageRequest {
        to: Some(send_message_request::To::ToUserId(receiver_id)),
        kind: if image {
            MessageKind::Image
        } else {
            MessageKind::File
        } as i32,
        text: name,
        file_id,
        client_message_id: client_message_id(),
        ..Default::default()
    };
    send_message(session, send, temp_id).await
}

pub(super) async fn upload_file(session: &UserSession, path: String, data: String) -> Replies {
    let name = path
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("upload");
    upload(session, name, data.into_bytes(), None)
        .await
        .map_err(|status| failed(session.user_id(), Step::Upload, &status))?;
    Ok(vec![reply("FILE_UPLOADED", json!({"filePath": path}))])
}

pub(super) async fn mark_read(session: &UserSession, target_id: i64) -> Replies {
    let mark = MarkReadRequest {
        conversation: Some(private(target_id)),
        up_to_seq: 0,
        // The user opened the chat: the other side may be told.
        no_receipt: false,
    };
    session
        .call(mark, |backend, r| async move {
            backend.messaging().mark_read(r).await
        })
        .await
        .map_err(|status| failed(session.user_id(), Step::Listing, &status))?;
    Ok(Vec::new())
}

pub(super) async fn clear(session: &UserSession, user_id: i64, target_id: i64) -> Replies {
    let clear = ClearHistoryRequest {
        conversation: Some(private(target_id)),
    };
    session
        .call(clear, |backend, r| async move {
            backend.messaging().clear_history(r).await
        })
        .await
        .map_err(|status| failed(session.user_id(), Step::Listing, &status))?;
    Ok(vec![reply(
        "MESSAGES_CLEARD",
        json!({"userId": user_id, "targetId": target_id}),
    )])
}

async fn send_message(session: &UserSession, send: SendMessageRequest, temp_id: String) -> Replies {
    let sent = session
        .call(send, |backend, r| async move {
            backend.messaging().send_message(r).await
        })
        .await
        .map_err(|status| failed(session.user_id(), Step::Send, &status))?;
    let message = sent.message.unwrap_or_default();
    Ok(vec![reply(
        "MESSAGE_RECEIVED_SELF",
        json!({
            "tempId": temp_id,
            "id": message.id,
            "timestamp": codec::ctime(message.sent_at_ms.div_euclid(1000)),
        }),
    )])
}

/// Stores `data` in the files service and returns its id.
async fn upload(
    session: &UserSession,
    name: &str,
    data: Vec<u8>,
    conversation: Option<ConversationRef>,
) -> Result<String, Status> {
    let metadata = UploadMetadata {
        name: name.to_owned(),
        size: data.len() as u64,
        visibility: if conversation.is_some() {
            Visibility::Conversation
        } else {
            Visibility::Private
        } as i32,
        conversation,
        ..Default::default()
    };
    let parts = vec![
        UploadRequest {
            part: Some(Part::Metadata(metadata)),
        },
        UploadRequest {
            part: Some(Part::Chunk(data)),
        },
    ];
    // The whole file is in memory already: the default call deadline fits the upload.
    let info = session
        .call(tokio_stream::iter(parts), |backend, r| async move {
            backend.files().upload(r).await
        })
        .await?;
    Ok(info.id)
}

/// The whole private conversation with `peer`, oldest first, as `M` objects; a message is
/// `read` up to its reader's read mark.
async fn history(session: &UserSession, peer: i64) -> Result<Vec<Value>, Status> {
    let me = session.user_id();
    // (mine, the peer's), from the newest page.
    let marks = Mutex::new(None);
    // Pages from the newest back; a page's token is the seq its messages come before.
    let pages = all_pages(MAX_PAGES, |token| {
        let marks = &marks;
        async move {
            let list = ListMessagesRequest {
                conversation: Some(private(peer)),
                before_seq: token.parse().unwrap_or(0),
                after_seq: 0,
                limit: PAGE,
            };
            let page = session
                .call(list, |backend, r| async move {
                    backend.messaging().list_messages(r).await
                })
                .await?;
            if let Ok(mut marks) = marks.lock() {
                marks.get_or_insert((page.last_read_seq, page.peer_last_read_seq));
            }
            let next = match page.messages.first() {
                Some(first) if page.has_more => first.seq.to_string(),
                _ => String::new(),
            };
            Ok((vec![page.messages], next))
        }
    })
    .await?;
    let (my_mark, peer_mark) = marks.into_inner().ok().flatten().unwrap_or_default();
    Ok(pages
        .iter()
        .rev()
        .flatten()
        .map(|m| {
            let mark = if m.sender_id == me {
                peer_mark
            } else {
                my_mark
            };
            message_value(m, mark >= m.seq)
        })
        .collect())
}

pub(super) fn message_value(m: &Message, read: bool) -> Value {
    let receiver_id = match m.to {
        Some(message::To::ToUserId(id)) => id,
        Some(message::To::ToGroupId(id)) => id,
        None => 0,
    };
    let kind = match MessageKind::try_from(m.kind) {
        Ok(MessageKind::Image) => ContentKind::Image,
        Ok(MessageKind::File | MessageKind::Audio) => ContentKind::File,
        _ => ContentKind::Text,
    };
    codec::message_object(&MessageView {
        id: m.id,
        sender_id: m.sender_id,
        receiver_id,
        content: &m.text,
        sent_at_secs: m.sent_at_ms.div_euclid(1000),
        read,
        kind,
    })
}

pub(super) fn private(user_id: i64) -> ConversationRef {
    ConversationRef {
        r#ref: Some(conversation_ref::Ref::UserId(user_id)),
    }
}

/// The idempotency key of a send: always a fresh one. The original server stored every send,
/// and a client may repeat a tempId (a counter restarting with the app); the tempId is only
/// echoed.
fn client_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
