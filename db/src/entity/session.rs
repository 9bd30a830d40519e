use sea_orm::entity::prelude::*;

/// A login session: the refresh-token chain behind a device's access tokens.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: i64,
    /// SHA-256 hex of the current refresh token.
    #[sea_orm(unique)]
    pub refresh_hash: String,
    /// SHA-256 hex of the refresh token spent last; presenting it again means the chain leaked.
    pub prev_refresh_hash: Option<String>,
    pub refresh_expires_at_ms: i64,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub client: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
