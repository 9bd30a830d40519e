//! The session watch (rosetta-auth `SessionWatch`) asks once per period for the sessions
//! revoked or expired since its last run: index both times so that each half of its query is a
//! range scan (SQLite's OR optimisation, PostgreSQL's bitmap OR) rather than a table scan that
//! grows with every session ever opened.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const REVOKED: &str = "idx_sessions_revoked_at_ms";
const EXPIRES: &str = "idx_sessions_refresh_expires_at_ms";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(m, REVOKED, Sessions::Table, &[Sessions::RevokedAtMs]).await?;
        index(m, EXPIRES, Sessions::Table, &[Sessions::RefreshExpiresAtMs]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [REVOKED, EXPIRES] {
            m.drop_index(Index::drop().name(name).table(Sessions::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    RevokedAtMs,
    RefreshExpiresAtMs,
}
