//! Throttle counters are forgotten after a quiet period (identifiers nobody has get counters
//! too, so the table must not grow without bound): index the column the sweep filters on.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_throttles_updated_at_ms";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(m, INDEX, Throttles::Table, &[Throttles::UpdatedAtMs]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(Throttles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Throttles {
    Table,
    UpdatedAtMs,
}
