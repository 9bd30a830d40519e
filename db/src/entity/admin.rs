use sea_orm::entity::prelude::*;

/// An account that holds the admin role (migration `m0008_admin`). Granted and revoked only
/// from the command line on the server, never over the API.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub granted_at_ms: i64,
    /// Who granted it, as text (e.g. "cli").
    pub granted_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
