//! Announcements: operator messages to every user, stored once (not once per user) and
//! delivered by the messaging service to each user once within their lifetime, with a
//! per-user cursor of the newest one delivered.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to the author: an announcement outlives its author's account.
        m.create_table(
            Table::create()
                .table(Announcements::Table)
                .col(big_pk_auto(Announcements::Id))
                .col(text(Announcements::Text))
                .col(big_integer_null(Announcements::AuthorUserId))
                .col(string(Announcements::Author))
                .col(big_integer(Announcements::CreatedAtMs))
                .col(big_integer(Announcements::ExpiresAtMs))
                .to_owned(),
        )
        .await?;
        super::index(
            m,
            "announcements_expiry",
            Announcements::Table,
            &[Announcements::ExpiresAtMs],
        )
        .await?;
        // One row per user who was ever delivered one; the user's row goes with the user.
        m.create_table(
            Table::create()
                .table(AnnouncementCursors::Table)
                .col(big_integer(AnnouncementCursors::UserId).primary_key())
                .col(big_integer(AnnouncementCursors::LastId))
                .foreign_key(
                    ForeignKey::create()
                        .from(AnnouncementCursors::Table, AnnouncementCursors::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AnnouncementCursors::Table.into_iden(),
            Announcements::Table.into_iden(),
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
enum Announcements {
    Table,
    Id,
    Text,
    AuthorUserId,
    Author,
    CreatedAtMs,
    ExpiresAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AnnouncementCursors {
    Table,
    UserId,
    LastId,
}
