use sea_orm::entity::prelude::*;

/// One durable event in a user's log; `payload` is the encoded `rosetta.messaging.v1.Event`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub at_ms: i64,
    #[sea_orm(column_type = "Blob")]
    pub payload: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
