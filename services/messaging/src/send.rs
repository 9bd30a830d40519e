//! SendMessage: validate, check policy, then allocate the conversation seq, store the message
//! and fan its event out to every participant's log in ONE transaction, and only then wake
//! the streams. A retry with the same `client_message_id` finds the stored message instead.

use rosetta_db::entity::messaging::{conversation, message};
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SendMessageResponse, event::Kind, send_message_request::To,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait as _, DatabaseTransaction, EntityTrait as _,
    QueryFilter as _, SqlErr,
    sea_query::{Expr, ExprTrait as _, Query},
};

use crate::{
    Messaging,
    conversations::{self, Target},
    convert,
    log::Events,
    policy,
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
        if let Some(found) = self.sent_before(sender, &req.client_message_id).await? {
            return self.respond(found, true).await;
        }
        let now = rosetta_db::now_ms();
        match target {
            Target::User(to) => policy::check_private(&self.db, sender, to).await?,
            Target::Group(group) => policy::check_group_send(&self.db, group, sender, now).await?,
        }
        let conversation = conversations::find_or_create(&self.db, sender, target).await?;
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

        let tx = rosetta_db::begin_write(&self.db).await?;
        let stored = match store(&tx, &conversation, sender, target, &req, now).await {
            Ok(stored) => stored,
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                // A concurrent retry of the same send won the race: answer with its message.
                drop(tx);
                let found = self
                    .sent_before(sender, &req.client_message_id)
                    .await?
                    .ok_or_else(|| ApiError::internal(err))?;
                return self.respond(found, true).await;
            }
            Err(err) => return Err(err.into()),
        };
        let recipients = conversations::participants(&*tx, &conversation).await?;
        let event = Kind::Message(convert::message(&stored));
        let deliveries = Events::append(&*tx, &recipients, &event, now).await?;
        tx.commit().await?;
        self.events.wake(deliveries).await;
        self.respond(stored, false).await
    }

    async fn sent_before(&self, sender: i64, client_id: &str) -> ApiResult<Option<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::SenderId.eq(sender))
            .filter(message::Column::ClientMessageId.eq(client_id))
            .one(&self.db)
            .await?)
    }

    async fn respond(
        &self,
        stored: message::Model,
        duplicate: bool,
    ) -> ApiResult<SendMessageResponse> {
        let recipient_online = match stored.to_user_id {
            Some(to) if stored.to_group_id.is_none() => self
                .presences
                .view(stored.sender_id, &[to])
                .await?
                .first()
                .is_some_and(|p| {
                    p.status == rosetta_proto::social::v1::PresenceStatus::Online as i32
                }),
            _ => false,
        };
        Ok(SendMessageResponse {
            message: Some(convert::message(&stored)),
            duplicate,
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
                "RECIPIENT_REQUIRED",
                "name a user or a group",
            ));
        }
    };
    if req.client_message_id.is_empty() {
        return Err(ApiError::invalid(
            "CLIENT_MESSAGE_ID_REQUIRED",
            "client_message_id is required",
        ));
    }
    if req.client_message_id.len() > MAX_CLIENT_ID {
        return Err(ApiError::invalid(
            "TOO_LARGE",
            "client_message_id is over 128 bytes",
        ));
    }
    if req.text.len() > MAX_TEXT {
        return Err(ApiError::invalid("TOO_LARGE", "text is over 16 KiB"));
    }
    match MessageKind::try_from(req.kind) {
        Ok(MessageKind::Text) if req.text.is_empty() => Err(ApiError::invalid(
            "EMPTY_MESSAGE",
            "a text message needs text",
        )),
        Ok(MessageKind::Text) => Ok(target),
        Ok(MessageKind::Image | MessageKind::File | MessageKind::Audio)
            if req.file_id.is_empty() =>
        {
            Err(ApiError::invalid(
                "FILE_ID_REQUIRED",
                "this kind needs a file_id",
            ))
        }
        Ok(MessageKind::Image | MessageKind::File | MessageKind::Audio) => Ok(target),
        _ => Err(ApiError::invalid("BAD_KIND", "unknown message kind")),
    }
}

/// Allocates the next seq (the UPDATE takes the conversation's row lock, or SQLite's write
/// lock, until commit: concurrent senders queue here, so seqs have no gaps), stores the
/// message and moves the sender's read mark past it.
async fn store(
    tx: &DatabaseTransaction,
    conversation: &conversation::Model,
    sender: i64,
    target: Target,
    req: &SendMessageRequest,
    now: i64,
) -> Result<message::Model, sea_orm::DbErr> {
    let bump = Query::update()
        .table(conversation::Entity)
        .value(
            conversation::Column::LastSeq,
            Expr::col(conversation::Column::LastSeq).add(1),
        )
        .value(conversation::Column::LastAtMs, now)
        .and_where(Expr::col(conversation::Column::Id).eq(conversation.id))
        .returning(Query::returning().columns([conversation::Column::LastSeq]))
        .to_owned();
    let seq: i64 = tx
        .query_one(&bump)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("conversation".into()))?
        .try_get("", "last_seq")?;
    let (to_user_id, to_group_id) = match target {
        Target::User(user) => (Some(user), None),
        Target::Group(group) => (None, Some(group)),
    };
    let stored = message::Entity::insert(message::ActiveModel {
        conversation_id: Set(conversation.id),
        seq: Set(seq),
        sender_id: Set(sender),
        to_user_id: Set(to_user_id),
        to_group_id: Set(to_group_id),
        kind: Set(i16::try_from(req.kind).unwrap_or_default()),
        text: Set(req.text.clone()),
        file_id: Set(req.file_id.clone()),
        reply_to_id: Set(req.reply_to_id),
        client_message_id: Set(req.client_message_id.clone()),
        client_time: Set(req.client_time.clone()),
        sent_at_ms: Set(now),
        recalled: Set(false),
        ..Default::default()
    })
    .exec_with_returning(tx)
    .await?;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastMessageId, Expr::value(stored.id))
        .filter(conversation::Column::Id.eq(conversation.id))
        .exec(tx)
        .await?;
    conversations::advance(tx, conversation.id, sender, seq, None)
        .await
        .map_err(|err| sea_orm::DbErr::Custom(err.to_string()))?;
    Ok(stored)
}
