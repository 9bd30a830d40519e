use sea_orm::entity::prelude::*;

/// The outstanding one-time code for a phone number or e-mail address, with its send-rate
/// window.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub channel: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub target: String,
    pub purpose: i16,
    /// SHA-256 hex of the code.
    pub code_hash: String,
    pub expires_at_ms: i64,
    pub attempts: i32,
    pub sent_at_ms: i64,
    pub window_start_ms: i64,
    pub sends_in_window: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
