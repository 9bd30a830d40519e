use sea_orm::entity::prelude::*;

/// A user's chosen status, liveness and last location. Shared by every messaging process.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "presences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The status the user chose (`PresenceStatus`: ONLINE or INVISIBLE; OFFLINE = signed out).
    pub status: i16,
    /// Last stream refresh or heartbeat; older than the timeout means offline.
    pub last_active_ms: i64,
    /// The status contacts were last told (ONLINE or OFFLINE).
    pub announced: i16,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_client_time: Option<String>,
    pub location_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
