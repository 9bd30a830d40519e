//! Operators: the admin role, disabled accounts and the audit log of admin actions.
//!
//! Role and state are tables of their own rather than columns of `users`: every writer of
//! user rows (registration, the importer) stays as it is, and a user without a row is an
//! ordinary, enabled account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Admins::Table)
                .col(big_integer(Admins::UserId).primary_key())
                .col(big_integer(Admins::GrantedAtMs))
                .col(string(Admins::GrantedBy))
                .foreign_key(
                    ForeignKey::create()
                        .from(Admins::Table, Admins::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DisabledAccounts::Table)
                .col(big_integer(DisabledAccounts::UserId).primary_key())
                .col(big_integer(DisabledAccounts::DisabledAtMs))
                .col(string(DisabledAccounts::DisabledBy))
                .col(text(DisabledAccounts::Note))
                .foreign_key(
                    ForeignKey::create()
                        .from(DisabledAccounts::Table, DisabledAccounts::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // No foreign keys: an entry outlives whatever it names.
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(big_integer(AuditLog::AtMs))
                .col(big_integer_null(AuditLog::ActorUserId))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(big_integer_null(AuditLog::TargetUserId))
                .col(text(AuditLog::Details))
                .col(string(AuditLog::Outcome))
                .to_owned(),
        )
        .await?;
        super::index(
            m,
            "audit_log_target",
            AuditLog::Table,
            &[AuditLog::TargetUserId, AuditLog::Id],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            DisabledAccounts::Table.into_iden(),
            Admins::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Admins {
    Table,
    UserId,
    GrantedAtMs,
    GrantedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum DisabledAccounts {
    Table,
    UserId,
    DisabledAtMs,
    DisabledBy,
    Note,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    AtMs,
    ActorUserId,
    Actor,
    Action,
    TargetUserId,
    Details,
    Outcome,
}
