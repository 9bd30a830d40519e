use sea_orm::entity::prelude::*;

/// A group conversation. Dissolved groups keep their row (messages reference it).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub public: bool,
    #[sea_orm(unique)]
    pub slug: Option<String>,
    pub created_at_ms: i64,
    pub dissolved_at_ms: Option<i64>,
    /// Owned by the server (the DPC lobby): no owner or admin member, not moderated.
    pub system: bool,
    /// Who created it (the hourly creation limit counts these); None for system groups.
    pub created_by: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
