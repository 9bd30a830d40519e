//! Conversations: finding or creating one for a target (through a bounded in-memory cache on
//! the send path), its participants, and a user's read state in it.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use rosetta_db::entity::messaging::{conversation, read_state};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref::Ref},
    messaging::v1::ConversationKind,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    sea_query::OnConflict,
};

use crate::policy;

/// The other side of a conversation, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User(i64),
    Group(i64),
}

impl Target {
    pub fn from_ref(conversation: Option<&ConversationRef>) -> ApiResult<Self> {
        match conversation.and_then(|c| c.r#ref) {
            Some(Ref::UserId(user)) => Ok(Self::User(user)),
            Some(Ref::GroupId(group)) => Ok(Self::Group(group)),
            None => Err(ApiError::invalid(
                Reason::ConversationRequired,
                "name a user or a group",
            )),
        }
    }

    fn key(self, me: i64) -> String {
        match self {
            Self::User(other) => format!("u:{}:{}", me.min(other), me.max(other)),
            Self::Group(group) => format!("g:{group}"),
        }
    }
}

/// What the send path needs of a conversation. Its id and members never change once created
/// (conversations are never deleted or re-keyed), so it can be cached for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation {
    pub id: i64,
    pub members: Members,
}

/// Who a conversation is between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Members {
    /// A private chat: the two users, lower id first.
    Pair(i64, i64),
    /// A group's chat: its members, read when a message is written.
    Group(i64),
}

impl Members {
    /// Who `me`'s conversation with `target` is between.
    fn of(me: i64, target: Target) -> Self {
        match target {
            Target::User(other) => Self::Pair(me.min(other), me.max(other)),
            Target::Group(group) => Self::Group(group),
        }
    }
}

impl Conversation {
    fn of(model: &conversation::Model) -> ApiResult<Self> {
        let members = match (model.group_id, model.user_lo, model.user_hi) {
            (Some(group), _, _) => Members::Group(group),
            (None, Some(lo), Some(hi)) => Members::Pair(lo, hi),
            _ => {
                return Err(ApiError::internal(format!(
                    "conversation {} has neither a group nor two users",
                    model.id
                )));
            }
        };
        Ok(Self {
            id: model.id,
            members,
        })
    }
}

/// Conversations by who they are between, so that a send reads no conversation row before
/// its write. Bounded: at [`Cache::CAPACITY`] entries an arbitrary one makes room (a miss
/// costs one read, or one insert and a read for a new conversation).
pub struct Cache {
    entries: Mutex<HashMap<Members, Conversation>>,
    capacity: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl Cache {
    /// 65,536 entries of ~48 bytes (key, value, table overhead): a few MiB at most.
    pub const CAPACITY: usize = 65_536;

    fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The conversation of `me` with `target`, created on first use.
    pub async fn get_or_create<C: ConnectionTrait>(
        &self,
        db: &C,
        me: i64,
        target: Target,
    ) -> ApiResult<Conversation> {
        if let Some(found) = self.lock().get(&Members::of(me, target)) {
            return Ok(*found);
        }
        let found = Conversation::of(&find_or_create(db, me, target).await?)?;
        Ok(self.insert(found))
    }

    /// The conversation of `me` with `target`, if there is one (none is created).
    pub async fn find<C: ConnectionTrait>(
        &self,
        db: &C,
        me: i64,
        target: Target,
    ) -> ApiResult<Option<Conversation>> {
        if let Some(found) = self.lock().get(&Members::of(me, target)) {
            return Ok(Some(*found));
        }
        match find(db, me, target).await? {
            Some(model) => Ok(Some(self.insert(Conversation::of(&model)?))),
            None => Ok(None),
        }
    }

    fn insert(&self, found: Conversation) -> Conversation {
        let mut entries = self.lock();
        if entries.len() >= self.capacity
            && let Some(evicted) = entries.keys().next().copied()
        {
            entries.remove(&evicted);
        }
        entries.insert(found.members, found);
        found
    }

    /// Entries are plain values written in one step: a panic elsewhere cannot leave one half
    /// written, so a poisoned lock is still consistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Members, Conversation>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The target of `conversation` as `me` sees it.
pub fn target_of(conversation: &conversation::Model, me: i64) -> Target {
    match (
        conversation.group_id,
        conversation.user_lo,
        conversation.user_hi,
    ) {
        (Some(group), _, _) => Target::Group(group),
        (None, Some(lo), Some(hi)) => Target::User(if lo == me { hi } else { lo }),
        _ => Target::User(0),
    }
}

pub fn to_ref(target: Target) -> ConversationRef {
    ConversationRef {
        r#ref: Some(match target {
            Target::User(user) => Ref::UserId(user),
            Target::Group(group) => Ref::GroupId(group),
        }),
    }
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    me: i64,
    target: Target,
) -> ApiResult<Option<conversation::Model>> {
    Ok(conversation::Entity::find()
        .filter(conversation::Column::Key.eq(target.key(me)))
        .one(db)
        .await?)
}

/// The conversation with `target`, created on first use (race-free through its unique key).
pub async fn find_or_create<C: ConnectionTrait>(
    db: &C,
    me: i64,
    target: Target,
) -> ApiResult<conversation::Model> {
    if let Some(found) = find(db, me, target).await? {
        return Ok(found);
    }
    let (kind, group_id, lo, hi) = match target {
        Target::User(other) => (
            ConversationKind::Private,
            None,
            Some(me.min(other)),
            Some(me.max(other)),
        ),
        Target::Group(group) => (ConversationKind::Group, Some(group), None, None),
    };
    conversation::Entity::insert(conversation::ActiveModel {
        kind: Set(kind as i16),
        key: Set(target.key(me)),
        group_id: Set(group_id),
        user_lo: Set(lo),
        user_hi: Set(hi),
        last_seq: Set(0),
        last_message_id: Set(0),
        last_at_ms: Set(rosetta_db::now_ms()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(conversation::Column::Key)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    find(db, me, target)
        .await?
        .ok_or_else(|| ApiError::internal("conversation vanished after insert"))
}

/// Whether `me` may read a conversation with `target`: groups need membership.
pub async fn authorize<C: ConnectionTrait>(db: &C, me: i64, target: Target) -> ApiResult<()> {
    match target {
        Target::User(other) if other == me => Err(ApiError::invalid(
            Reason::BadRecipient,
            "there is no conversation with yourself",
        )),
        Target::User(_) => Ok(()),
        Target::Group(group) => policy::membership(db, group, me).await.map(|_| ()),
    }
}

/// Everyone who receives the events of `conversation`.
pub async fn participants<C: ConnectionTrait>(
    db: &C,
    conversation: &conversation::Model,
) -> ApiResult<Vec<i64>> {
    match (
        conversation.group_id,
        conversation.user_lo,
        conversation.user_hi,
    ) {
        (Some(group), _, _) => policy::group_members(db, group).await,
        (None, Some(lo), Some(hi)) => Ok(vec![lo, hi]),
        _ => Ok(Vec::new()),
    }
}

/// `(last_read_seq, cleared_seq)` of `user` in a conversation.
pub async fn read_state_of<C: ConnectionTrait>(
    db: &C,
    conversation_id: i64,
    user: i64,
) -> ApiResult<(i64, i64)> {
    Ok(read_state::Entity::find_by_id((conversation_id, user))
        .one(db)
        .await?
        .map_or((0, 0), |s| (s.last_read_seq, s.cleared_seq)))
}

/// Moves `user`'s read mark (and optionally clear mark) forward; never backward. Returns the
/// `(last_read_seq, cleared_seq)` before and after.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    conversation_id: i64,
    user: i64,
    read: i64,
    cleared: Option<i64>,
) -> ApiResult<((i64, i64), (i64, i64))> {
    let (old_read, old_cleared) = read_state_of(db, conversation_id, user).await?;
    let new = (old_read.max(read), old_cleared.max(cleared.unwrap_or(0)));
    if new != (old_read, old_cleared) {
        read_state::Entity::insert(read_state::ActiveModel {
            conversation_id: Set(conversation_id),
            user_id: Set(user),
            last_read_seq: Set(new.0),
            cleared_seq: Set(new.1),
        })
        .on_conflict(
            OnConflict::columns([
                read_state::Column::ConversationId,
                read_state::Column::UserId,
            ])
            .update_columns([
                read_state::Column::LastReadSeq,
                read_state::Column::ClearedSeq,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(((old_read, old_cleared), new))
}

#[cfg(test)]
mod tests {
    use sea_orm::DatabaseConnection;

    use super::*;

    /// A hit reads nothing (the database here is disconnected); the cache never holds more
    /// than its capacity; an evicted conversation is read again, with the same id.
    #[tokio::test]
    async fn the_cache_reads_through_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
        let db = rosetta_db::connect(&url).await.unwrap();
        let cache = Cache::with_capacity(2);
        let first = cache.get_or_create(&db, 1, Target::User(2)).await.unwrap();
        assert_eq!(first.members, Members::Pair(1, 2));
        let offline = DatabaseConnection::default();
        let hit = cache.get_or_create(&offline, 2, Target::User(1)).await;
        assert_eq!(
            hit.unwrap(),
            first,
            "the same pair from the other side, from memory"
        );
        cache.get_or_create(&db, 1, Target::Group(7)).await.unwrap();
        cache.get_or_create(&db, 1, Target::User(3)).await.unwrap();
        assert_eq!(cache.lock().len(), 2, "bounded");
        let again = cache.get_or_create(&db, 1, Target::User(2)).await.unwrap();
        assert_eq!(again, first, "ids never change");
    }
}
