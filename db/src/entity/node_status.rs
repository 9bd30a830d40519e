use sea_orm::entity::prelude::*;

/// The last report of one role or bridge in one process.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "node_status")]
pub struct Model {
    /// `<process_id>/<kind>/<name>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub process_id: String,
    /// `role` or `bridge`.
    pub kind: String,
    pub name: String,
    pub version: String,
    pub host: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    /// How often the instance reports.
    pub interval_ms: i64,
    pub connections: i64,
    pub online_users: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
