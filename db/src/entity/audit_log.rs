use sea_orm::entity::prelude::*;

/// One admin action: who, what, on whom, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_ms: i64,
    /// The admin's user id; `None` for actions from the server's command line.
    pub actor_user_id: Option<i64>,
    /// The admin's user name at the time, or "cli".
    pub actor: String,
    /// The RPC's name, or the CLI action.
    pub action: String,
    pub target_user_id: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub details: String,
    /// "OK" or the failure's reason.
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
