use sea_orm::entity::prelude::*;

/// An account. Deleted accounts keep their row (messages still name their sender) with the
/// personal fields scrubbed and `deleted_at_ms` set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    #[sea_orm(unique)]
    pub ocid: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub nickname: String,
    pub avatar: String,
    #[sea_orm(column_type = "Text")]
    pub signature: String,
    pub gender: i16,
    pub vip: bool,
    pub security_question_id: i32,
    /// argon2id of the security answer; the answer itself is never stored.
    pub security_answer_hash: Option<String>,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
