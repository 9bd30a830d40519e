use sea_orm::entity::prelude::*;

/// An invitation into a group for a user who is not the inviter's friend.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_invitations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub group_id: i64,
    pub inviter_id: i64,
    pub invitee_id: i64,
    pub state: i16,
    pub created_at_ms: i64,
    pub answered_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
