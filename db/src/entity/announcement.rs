use sea_orm::entity::prelude::*;

/// An operator's message to every user (migration `m0010_announcements`), delivered to each
/// user once until `expires_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "announcements")]
pub struct Model {
    /// Grows with time: a user's cursor is the newest id delivered to them.
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    /// The admin who sent it; `None` when sent from the server's command line.
    pub author_user_id: Option<i64>,
    /// The admin's user name at the time.
    pub author: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
