use sea_orm::entity::prelude::*;

/// A private chat between two users or a group's chat, with its sequence counter.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: i16,
    /// `u:<lo>:<hi>` for a private chat, `g:<group>` for a group.
    #[sea_orm(unique)]
    pub key: String,
    pub group_id: Option<i64>,
    pub user_lo: Option<i64>,
    pub user_hi: Option<i64>,
    /// Seq of the newest message (the allocation counter).
    pub last_seq: i64,
    /// Id of the newest message, 0 for none; orders conversations by recency.
    pub last_message_id: i64,
    pub last_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
