use sea_orm::entity::prelude::*;

/// The live token a legacy protocol's client holds for a user, bound to the session that
/// issued it (one per user and protocol).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "legacy_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub protocol: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    pub session_id: String,
    pub created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
