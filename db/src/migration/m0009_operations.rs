//! Operating a deployment: the maintenance switch and the status every role and bridge
//! instance reports of itself.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row (id 1) once maintenance was first switched; no row means off.
        m.create_table(
            Table::create()
                .table(Maintenance::Table)
                .col(integer(Maintenance::Id).primary_key())
                .col(boolean(Maintenance::Enabled))
                .col(text(Maintenance::Message))
                .col(big_integer(Maintenance::ChangedAtMs))
                .col(string(Maintenance::ChangedBy))
                .to_owned(),
        )
        .await?;
        // One row per (process, role or bridge); rewritten by each heartbeat.
        m.create_table(
            Table::create()
                .table(NodeStatus::Table)
                .col(string(NodeStatus::Id).primary_key())
                .col(string(NodeStatus::ProcessId))
                .col(string(NodeStatus::Kind))
                .col(string(NodeStatus::Name))
                .col(string(NodeStatus::Version))
                .col(string(NodeStatus::Host))
                .col(big_integer(NodeStatus::StartedAtMs))
                .col(big_integer(NodeStatus::LastSeenMs))
                .col(big_integer(NodeStatus::IntervalMs))
                .col(big_integer(NodeStatus::Connections))
                .col(big_integer(NodeStatus::OnlineUsers))
                .to_owned(),
        )
        .await?;
        super::index(
            m,
            "node_status_last_seen",
            NodeStatus::Table,
            &[NodeStatus::LastSeenMs],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NodeStatus::Table.into_iden(),
            Maintenance::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Maintenance {
    Table,
    Id,
    Enabled,
    Message,
    ChangedAtMs,
    ChangedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum NodeStatus {
    Table,
    Id,
    ProcessId,
    Kind,
    Name,
    Version,
    Host,
    StartedAtMs,
    LastSeenMs,
    IntervalMs,
    Connections,
    OnlineUsers,
}
