//! Files: one row per stored upload. The row is written only after its blob is complete, so a
//! row always names a whole object.

use sea_orm_migration::{prelude::*, schema::*};

use super::{index, m0001_accounts::Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Files::Table)
                // `seq` orders listings and keys their pages; `id` is the opaque public handle.
                .col(big_pk_auto(Files::Seq))
                .col(string_uniq(Files::Id))
                .col(big_integer(Files::OwnerId))
                .col(string(Files::Name))
                .col(text(Files::Folder))
                .col(big_integer(Files::Size))
                .col(string(Files::Sha256))
                .col(string(Files::ContentType))
                .col(small_integer(Files::Visibility))
                .col(big_integer_null(Files::ConvUserId))
                .col(big_integer_null(Files::ConvGroupId))
                .col(string(Files::ObjectKey))
                .col(big_integer(Files::CreatedAtMs))
                .foreign_key(
                    ForeignKey::create()
                        .from(Files::Table, Files::OwnerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_files_owner_folder",
            Files::Table,
            &[Files::OwnerId, Files::Folder],
        )
        .await?;
        index(
            m,
            "idx_files_visibility_folder",
            Files::Table,
            &[Files::Visibility, Files::Folder],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Files::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Files {
    Table,
    Seq,
    Id,
    OwnerId,
    Name,
    Folder,
    Size,
    Sha256,
    ContentType,
    Visibility,
    ConvUserId,
    ConvGroupId,
    ObjectKey,
    CreatedAtMs,
}
