//! SendMessage: validate and check policy here, then hand the send to the
//! [`Writer`](crate::commit::Writer), which stores it and fans it out in one transaction (with
//! the other sends queued meanwhile) and wakes the streams after the commit. A retry with the
//! same `client_message_id` is recognised by the unique key inside that write and answered
//! with the stored message: no read before the write (a refused send reads whether it is the
//! retry of a stored one, see [`Messaging::stored_or`]).

use rosetta_db::entity::messaging::message;
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::Class;
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SendMessageResponse, send_message_request::To,
};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use crate::{
    Messaging,
    commit::{Draft, Recipient, Stored},
    conversations::Target,
    convert,
};

/// Text (or caption) limit: 16 KiB.
const MAX_TEXT: usize = 16 * 1024;
/// Idempotency key limit.
const MAX_CLIENT_ID: usize = 128;

impl Messaging {
    pub async fn send(
        &self,
        sender: i64,
        req: SendMessageRequest,
    ) -> ApiResult<SendMessageResponse> {
        let target = validate(&req)?;
        let now = rosetta_db::now_ms();
        // From memory when it can; the writer confirms it inside the write.
        let admission = match self.policy.admit(sender, target, now).await {
            Ok(admission) => admission,
            Err(refusal) => {
                return self
                    .stored_or(sender, &req.client_message_id, refusal)
                    .await;
            }
        };
        let conversation = self
            .conversations
            .get_or_create(&self.db, sender, target)
            .await?;
        if req.reply_to_id != 0 {
            let answered = message::Entity::find_by_id(req.reply_to_id)
                .one(&self.db)
                .await?;
            if answered.is_none_or(|m| m.conversation_id != conversation.id) {
                return Err(ApiError::not_found(
                    "the answered message is not in this conversation",
                ));
            }
        }
        let draft = Draft {
            conversation,
            admission,
            req,
            now,
        };
        let client_message_id = draft.req.client_message_id.clone();
        match self.writer.write(draft).await {
            Ok(stored) => self.respond(stored).await,
            Err(refusal) => self.stored_or(sender, &client_message_id, refusal).await,
        }
    }

    /// A send the policy refuses may be the retry of one stored before the change (its answer
    /// was lost): the retry gets the stored message, as any retry does, though no longer the
    /// recipient's presence. Only refused sends pay for this read.
    async fn stored_or(
        &self,
        sender: i64,
        client_message_id: &str,
        refusal: ApiError,
    ) -> ApiResult<SendMessageResponse> {
        if refusal.reason.class() != Class::Denied {
            return Err(refusal);
        }
        let stored = message::Entity::find()
            .filter(message::Column::SenderId.eq(sender))
            .filter(message::Column::ClientMessageId.eq(client_message_id))
            .one(&self.db)
            .await?;
        match stored {
            Some(stored) => Ok(SendMessageResponse {
                message: Some(convert::message(&stored)),
                duplicate: true,
                recipient_online: false,
            }),
            None => Err(refusal),
        }
    }

    async fn respond(&self, stored: Stored) -> ApiResult<SendMessageResponse> {
        // Only sends the policy admitted get here: the two are friends, and a friend sees
        // the recipient's status as it is (but invisible as offline).
        let message = &stored.message;
        let recipient_online = match (message.to_user_id, message.to_group_id, stored.recipient) {
            (Some(_), None, Recipient::Read(row)) => self.presences.online_to_friends_by(row),
            (Some(to), None, Recipient::Unread) => self.presences.online_to_friends(to).await?,
            _ => false,
        };
        Ok(SendMessageResponse {
            message: Some(convert::message(message)),
            duplicate: stored.duplicate,
            recipient_online,
        })
    }
}

fn validate(req: &SendMessageRequest) -> ApiResult<Target> {
    let target = match req.to {
        Some(To::ToUserId(user)) => Target::User(user),
        Some(To::ToGroupId(group)) => Target::Group(group),
        None => {
            return Err(ApiError::invalid(
                Reason::RecipientRequired,
                "name a user or a group",
            ));
        }
    };
    if req.client_message_id.is_empty() {
        return Err(ApiError::invalid(
            Reason::ClientMessageIdRequired,
            "client_message_id is required",
        ));
    }
    if req.client_message_id.len() > MAX_CLIENT_ID {
        return Err(ApiError::invalid(
            Reason::TooLarge,
            "client_message_id is over 128 bytes",
        ));
    }
    if req.text.len() > MAX_TEXT {
        return Err(ApiError::invalid(Reason::TooLarge, "text is over 16 KiB"));
    }
    match MessageKind::try_from(req.kind) {
        Ok(MessageKind::Text) if req.text.is_empty() => Err(ApiError::invalid(
            Reason::EmptyMessage,
            "a text message needs text",
        )),
        Ok(MessageKind::Text) => Ok(target),
        Ok(MessageKind::Image | MessageKind::File | MessageKind::Audio)
            if req.file_id.is_empty() =>
        {
            Err(ApiError::invalid(
                Reason::FileIdRequired,
                "this kind needs a file_id",
            ))
        }
        Ok(MessageKind::Image | MessageKind::File | MessageKind::Audio) => Ok(target),
        _ => Err(ApiError::invalid(Reason::BadKind, "unknown message kind")),
    }
}
