use sea_orm::entity::prelude::*;

/// One message at its place (`seq`) in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub to_user_id: Option<i64>,
    pub to_group_id: Option<i64>,
    pub kind: i16,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub file_id: String,
    pub reply_to_id: i64,
    pub client_message_id: String,
    pub client_time: String,
    pub sent_at_ms: i64,
    pub recalled: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
