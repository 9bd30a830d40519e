use sea_orm::entity::prelude::*;

/// One argon2id verifier of a user's password in one encoding (`scheme`: 1 plain, 2 MD5 hex,
/// 3 SHA-256 hex), so that legacy clients that only ever send a digest can log in.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scheme: i16,
    /// PHC string.
    pub verifier: String,
    pub created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
