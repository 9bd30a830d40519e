//! Private text chat (dialect A has no groups).
//!
//! | client / event | canonical | reply / push |
//! |---|---|---|
//! | C_SEND_MSG | `LookupUser` (unless the name is remembered), `SendMessage` (TEXT) | none; S_ERROR 5 when the recipient is not online, else the refusal's code |
//! | `message` (private, to the user) | `MarkRead` | S_SEND_MSG (text, `[image] …`, `[file] …`) or S_AUDIO_RSP ×n |
//! | `announcement` | — | S_SEND_MSG from `system` |

use rosetta_proto::messaging::v1::{
    Announcement, Message, MessageKind, SendMessageRequest, message::To, send_message_request,
};
use tonic::Status;

use super::{Close, Ctx, local_time, replies::refused};
use crate::codec::{ServerMessage, error};

impl Ctx<'_> {
    pub(super) async fn send_text(&mut self, friend: &str, text: String) -> Result<(), Close> {
        if text.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut to = self.recipient(friend).await?;
            let mut text = text;
            loop {
                // Kept for a second try only when the first goes to a remembered id.
                let body = if to.cached {
                    text.clone()
                } else {
                    std::mem::take(&mut text)
                };
                let sent = self
                    .send_message(to.id, MessageKind::Text, body, String::new())
                    .await;
                match self.retry(friend, to, &sent).await? {
                    Some(fresh) => to = fresh,
                    None => return sent,
                }
            }
        }
        .await;
        self.answer_send(result).await
    }

    /// Sends a private message; whether the recipient is online.
    pub(super) async fn send_message(
        &self,
        to: i64,
        kind: MessageKind,
        text: String,
        file_id: String,
    ) -> Result<bool, Status> {
        let request = SendMessageRequest {
            to: Some(send_message_request::To::ToUserId(to)),
            kind: kind.into(),
            text,
            file_id,
            client_message_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let sent = self
            .session()
            .call(request, |backend, r| async move {
                backend.messaging().send_message(r).await
            })
            .await?;
        Ok(sent.recipient_online)
    }

    /// No acknowledgement on success; error 5 when the recipient is not online.
    pub(super) async fn answer_send(&mut self, result: Result<bool, Status>) -> Result<(), Close> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) => self.io.error(error::OFFLINE).await,
            Err(status) => {
                let code = refused(self.user_id(), "message", &status);
                self.io.error(code).await
            }
        }
    }

    /// An operator's announcement: a chat message from the reserved name `system`, which no
    /// account can take (a reply to it finds nobody).
    pub(super) async fn push_announcement(
        &mut self,
        announcement: Announcement,
    ) -> Result<(), Close> {
        self.io
            .send(ServerMessage::Message {
                from: rosetta_proto::system::NAME.to_owned(),
                text: announcement.text,
                time: local_time(announcement.sent_at_ms),
            })
            .await
    }

    /// A received message as the client shows it.
    pub(super) async fn show_message(&mut self, message: Message) -> Result<(), Close> {
        let me = self.user_id();
        // Dialect A has private chat only; the user's own sends are not echoed.
        if message.sender_id == me || message.to != Some(To::ToUserId(me)) || message.recalled {
            return Ok(());
        }
        let from = self.name_of(message.sender_id).await;
        let time = local_time(message.sent_at_ms);
        let text = match MessageKind::try_from(message.kind) {
            Ok(MessageKind::Text) => message.text,
            Ok(MessageKind::Audio) => return self.push_clip(from, &message.file_id, time).await,
            Ok(MessageKind::Image) => format!("[image] {}", message.text).trim_end().to_owned(),
            Ok(MessageKind::File) => format!("[file] {}", message.text).trim_end().to_owned(),
            _ => return Ok(()),
        };
        self.io
            .send(ServerMessage::Message { from, text, time })
            .await
    }
}
