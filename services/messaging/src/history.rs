//! Reading a conversation and the caller's place in it: history, conversation list, unread
//! counts, read marks, clearing and recall.

use rosetta_db::entity::messaging::{conversation, message};
use rosetta_kit::{ApiError, ApiResult, Reason, page::Page};
use rosetta_proto::{
    common::v1::PageRequest,
    messaging::v1::{
        Conversation, ConversationKind, GetUnreadCountsResponse, ListConversationsResponse,
        ListMessagesRequest, ListMessagesResponse, MessageRecalled, ReadReceipt, event::Kind,
    },
};
use sea_orm::{
    ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, sea_query::Expr,
};

use crate::{
    Messaging,
    conversations::{self, Target},
    convert,
    log::{Events, to_i64, to_u64},
    policy,
};

/// Whether moving a read mark in a private chat tells the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The reader's client shows messages as read: the other side gets a `ReadReceipt`.
    Sent,
    /// The mark records delivery to a client with no read state; nobody is told.
    Withheld,
}

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

impl Messaging {
    pub async fn list_messages(
        &self,
        me: i64,
        req: ListMessagesRequest,
    ) -> ApiResult<ListMessagesResponse> {
        let target = Target::from_ref(req.conversation.as_ref())?;
        conversations::authorize(&self.db, me, target).await?;
        let Some(conversation) = conversations::find(&self.db, me, target).await? else {
            return Ok(ListMessagesResponse::default());
        };
        let (read, cleared) = conversations::read_state_of(&self.db, conversation.id, me).await?;
        let peer_read = match target {
            Target::User(peer) => {
                conversations::read_state_of(&self.db, conversation.id, peer)
                    .await?
                    .0
            }
            Target::Group(_) => 0,
        };
        let limit = match u64::from(req.limit) {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let mut query = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation.id))
            .filter(message::Column::Seq.gt(cleared.max(to_i64(req.after_seq))));
        if req.before_seq > 0 {
            query = query.filter(message::Column::Seq.lt(to_i64(req.before_seq)));
        }
        // Only an upper bound: the newest below it. Otherwise: the oldest above `after_seq`.
        let newest_first = req.after_seq == 0;
        query = if newest_first {
            query.order_by_desc(message::Column::Seq)
        } else {
            query.order_by_asc(message::Column::Seq)
        };
        let mut rows = query.limit(limit + 1).all(&self.db).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        if newest_first {
            rows.reverse();
        }
        Ok(ListMessagesResponse {
            messages: rows.iter().map(convert::message).collect(),
            has_more,
            last_read_seq: u64::try_from(read).unwrap_or(0),
            peer_last_read_seq: u64::try_from(peer_read).unwrap_or(0),
        })
    }

    /// The caller's conversations with messages, most recent first (keyset on the newest
    /// message id, which grows with time).
    pub async fn list_conversations(
        &self,
        me: i64,
        page: Option<&PageRequest>,
    ) -> ApiResult<ListConversationsResponse> {
        let page = Page::from_request(page)?;
        let mut query = self.my_conversations(me).await?;
        if let Some(after) = page.after {
            query = query.filter(conversation::Column::LastMessageId.lt(after));
        }
        let rows = query
            .order_by_desc(conversation::Column::LastMessageId)
            .limit(page.fetch())
            .all(&self.db)
            .await?;
        let (rows, page) = page.finish(rows, |c| c.last_message_id);
        let mut conversations = Vec::with_capacity(rows.len());
        for row in &rows {
            conversations.push(self.describe(me, row).await?);
        }
        Ok(ListConversationsResponse {
            conversations,
            page: Some(page),
        })
    }

    pub async fn unread_counts(&self, me: i64) -> ApiResult<GetUnreadCountsResponse> {
        let rows = self
            .my_conversations(me)
            .await?
            .order_by_desc(conversation::Column::LastMessageId)
            .all(&self.db)
            .await?;
        let mut response = GetUnreadCountsResponse::default();
        for row in &rows {
            let described = self.describe(me, row).await?;
            if described.unread_count > 0 {
                response.total += described.unread_count;
                response.conversations.push(described);
            }
        }
        Ok(response)
    }

    /// Private conversations of `me` and those of `me`'s groups, with at least one message.
    async fn my_conversations(&self, me: i64) -> ApiResult<sea_orm::Select<conversation::Entity>> {
        let groups = policy::groups_of(&self.db, me).await?;
        Ok(conversation::Entity::find()
            .filter(conversation::Column::LastMessageId.gt(0))
            .filter(
                Condition::any()
                    .add(conversation::Column::UserLo.eq(me))
                    .add(conversation::Column::UserHi.eq(me))
                    .add(conversation::Column::GroupId.is_in(groups)),
            ))
    }

    async fn describe(&self, me: i64, row: &conversation::Model) -> ApiResult<Conversation> {
        let (read, cleared) = conversations::read_state_of(&self.db, row.id, me).await?;
        let seen = read.max(cleared);
        let last_message = if row.last_seq > cleared {
            message::Entity::find_by_id(row.last_message_id)
                .one(&self.db)
                .await?
                .map(|m| convert::message(&m))
        } else {
            None
        };
        let kind = if row.group_id.is_some() {
            ConversationKind::Group
        } else {
            ConversationKind::Private
        };
        Ok(Conversation {
            id: row.id,
            kind: kind.into(),
            r#ref: Some(conversations::to_ref(conversations::target_of(row, me))),
            last_message,
            unread_count: to_u64(row.last_seq - seen),
            last_read_seq: to_u64(read),
            last_seq: to_u64(row.last_seq),
        })
    }

    /// Moves the caller's read mark; the other side of a private chat gets a receipt unless
    /// it is [`Receipt::Withheld`]. A mark without a receipt is written by the sends' writer,
    /// in a lane's next batch (see `commit::marks`).
    pub async fn mark_read(
        &self,
        me: i64,
        target: Target,
        up_to: u64,
        receipt: Receipt,
    ) -> ApiResult<u64> {
        conversations::authorize(&self.db, me, target).await?;
        if receipt == Receipt::Withheld {
            let Some(conversation) = self.conversations.find(&self.db, me, target).await? else {
                return Ok(0);
            };
            let mark = crate::commit::Mark {
                conversation_id: conversation.id,
                user: me,
                up_to,
            };
            return self.writer.mark(mark).await;
        }
        let Some(conversation) = conversations::find(&self.db, me, target).await? else {
            return Ok(0);
        };
        let up_to = match up_to {
            0 => conversation.last_seq,
            n => to_i64(n).min(conversation.last_seq),
        };
        // The mark and its receipt in one write transaction: on SQLite a write outside the
        // write turn would wait in SQLite's busy handler behind the senders.
        let tx = rosetta_db::begin_write(&self.db).await?;
        let ((before, _), (after, _)) =
            conversations::advance(&*tx, conversation.id, me, up_to, None).await?;
        let mut deliveries = Vec::new();
        if let (Target::User(other), true, Receipt::Sent) = (target, after > before, receipt) {
            let receipt = Kind::ReadReceipt(ReadReceipt {
                conversation_id: conversation.id,
                reader_id: me,
                up_to_seq: to_u64(after),
            });
            deliveries = Events::append(&*tx, &[other], &receipt, rosetta_db::now_ms()).await?;
        }
        tx.commit().await?;
        self.events.wake(deliveries).await;
        Ok(to_u64(after))
    }

    /// Hides the conversation up to its newest message, for the caller only.
    pub async fn clear_history(&self, me: i64, target: Target) -> ApiResult<u64> {
        conversations::authorize(&self.db, me, target).await?;
        let Some(conversation) = conversations::find(&self.db, me, target).await? else {
            return Ok(0);
        };
        let last = conversation.last_seq;
        let tx = rosetta_db::begin_write(&self.db).await?;
        let (_, (_, cleared)) =
            conversations::advance(&*tx, conversation.id, me, last, Some(last)).await?;
        tx.commit().await?;
        Ok(to_u64(cleared))
    }

    /// The sender within the recall window, or a group owner/admin at any time.
    pub async fn recall(&self, me: i64, message_id: i64) -> ApiResult<()> {
        let stored = message::Entity::find_by_id(message_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("no such message"))?;
        let conversation = conversation::Entity::find_by_id(stored.conversation_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("no such message"))?;
        let participants = conversations::participants(&self.db, &conversation).await?;
        if !participants.contains(&me) && stored.sender_id != me {
            return Err(ApiError::not_found("no such message"));
        }
        let moderator = match conversation.group_id {
            Some(group) => policy::membership(&self.db, group, me)
                .await
                .is_ok_and(|m| policy::is_moderator(&m)),
            None => false,
        };
        if !moderator {
            if stored.sender_id != me {
                return Err(ApiError::denied(
                    Reason::NotAllowed,
                    "only the sender or a group admin may recall",
                ));
            }
            let window = i64::try_from(self.config.recall_window.as_millis()).unwrap_or(i64::MAX);
            if rosetta_db::now_ms() - stored.sent_at_ms > window {
                return Err(ApiError::precondition(
                    Reason::RecallWindowPassed,
                    "too late to recall this message",
                ));
            }
        }
        if stored.recalled {
            return Ok(());
        }
        let now = rosetta_db::now_ms();
        let tx = rosetta_db::begin_write(&self.db).await?;
        message::Entity::update_many()
            .col_expr(message::Column::Recalled, Expr::value(true))
            .col_expr(message::Column::Text, Expr::value(""))
            .col_expr(message::Column::FileId, Expr::value(""))
            .filter(message::Column::Id.eq(stored.id))
            .exec(&*tx)
            .await?;
        let event = Kind::MessageRecalled(MessageRecalled {
            message_id: stored.id,
            conversation_id: stored.conversation_id,
            seq: to_u64(stored.seq),
            recalled_by: me,
        });
        let deliveries = Events::append(&*tx, &participants, &event, now).await?;
        tx.commit().await?;
        self.events.wake(deliveries).await;
        Ok(())
    }
}
