use sea_orm::entity::prelude::*;

/// A request to join a group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "join_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub group_id: i64,
    pub applicant_id: i64,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    pub state: i16,
    pub created_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub answered_by: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
