use sea_orm::entity::prelude::*;

/// The maintenance switch: one row (id [`ROW`]) once an operator first set it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maintenance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub enabled: bool,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub changed_at_ms: i64,
    /// The admin who switched it last, as text (their user name at the time).
    pub changed_by: String,
}

/// The id of the one row.
pub const ROW: i32 = 1;

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
