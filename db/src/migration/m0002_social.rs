//! The social graph: friend requests, friendships, blocks, groups, memberships and join
//! requests.

use sea_orm_migration::{prelude::*, schema::*};

use super::{index, m0001_accounts::Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FriendRequests::Table)
                .col(big_pk_auto(FriendRequests::Id))
                .col(big_integer(FriendRequests::FromUserId))
                .col(big_integer(FriendRequests::ToUserId))
                .col(text(FriendRequests::Note))
                .col(small_integer(FriendRequests::State))
                .col(big_integer(FriendRequests::CreatedAtMs))
                .col(big_integer_null(FriendRequests::AnsweredAtMs))
                .foreign_key(&mut fk(FriendRequests::Table, FriendRequests::FromUserId))
                .foreign_key(&mut fk(FriendRequests::Table, FriendRequests::ToUserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_friend_requests_to",
            FriendRequests::Table,
            &[FriendRequests::ToUserId, FriendRequests::State],
        )
        .await?;
        index(
            m,
            "idx_friend_requests_from",
            FriendRequests::Table,
            &[FriendRequests::FromUserId, FriendRequests::State],
        )
        .await?;

        // One row per direction, so "my contacts" is a single primary-key range scan.
        m.create_table(
            Table::create()
                .table(Friendships::Table)
                .col(big_integer(Friendships::UserId))
                .col(big_integer(Friendships::FriendId))
                .col(big_integer(Friendships::SinceMs))
                .primary_key(
                    Index::create()
                        .col(Friendships::UserId)
                        .col(Friendships::FriendId),
                )
                .foreign_key(&mut fk(Friendships::Table, Friendships::UserId))
                .foreign_key(&mut fk(Friendships::Table, Friendships::FriendId))
                .to_owned(),
        )
        .await?;
        // Contacts are listed by when the friendship began: keyset (since_ms, friend_id).
        index(
            m,
            "idx_friendships_since",
            Friendships::Table,
            &[
                Friendships::UserId,
                Friendships::SinceMs,
                Friendships::FriendId,
            ],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Blocks::Table)
                .col(big_integer(Blocks::UserId))
                .col(big_integer(Blocks::BlockedId))
                .col(big_integer(Blocks::CreatedAtMs))
                .primary_key(Index::create().col(Blocks::UserId).col(Blocks::BlockedId))
                .foreign_key(&mut fk(Blocks::Table, Blocks::UserId))
                .foreign_key(&mut fk(Blocks::Table, Blocks::BlockedId))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Groups::Table)
                .col(big_pk_auto(Groups::Id))
                .col(string(Groups::Name))
                .col(big_integer(Groups::OwnerId))
                .col(boolean(Groups::Public))
                .col(string_null(Groups::Slug).unique_key())
                .col(big_integer(Groups::CreatedAtMs))
                .col(big_integer_null(Groups::DissolvedAtMs))
                .foreign_key(&mut fk(Groups::Table, Groups::OwnerId))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupMembers::Table)
                .col(big_integer(GroupMembers::GroupId))
                .col(big_integer(GroupMembers::UserId))
                .col(small_integer(GroupMembers::Role))
                .col(big_integer(GroupMembers::JoinedAtMs))
                .col(big_integer(GroupMembers::MutedUntilMs))
                .primary_key(
                    Index::create()
                        .col(GroupMembers::GroupId)
                        .col(GroupMembers::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupMembers::Table, GroupMembers::GroupId)
                        .to(Groups::Table, Groups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(&mut fk(GroupMembers::Table, GroupMembers::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_group_members_user",
            GroupMembers::Table,
            // "My groups" are listed by join time: keyset (joined_at_ms, group_id).
            &[
                GroupMembers::UserId,
                GroupMembers::JoinedAtMs,
                GroupMembers::GroupId,
            ],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(JoinRequests::Table)
                .col(big_pk_auto(JoinRequests::Id))
                .col(big_integer(JoinRequests::GroupId))
                .col(big_integer(JoinRequests::ApplicantId))
                .col(text(JoinRequests::Note))
                .col(small_integer(JoinRequests::State))
                .col(big_integer(JoinRequests::CreatedAtMs))
                .col(big_integer_null(JoinRequests::AnsweredAtMs))
                .col(big_integer_null(JoinRequests::AnsweredBy))
                .foreign_key(
                    ForeignKey::create()
                        .from(JoinRequests::Table, JoinRequests::GroupId)
                        .to(Groups::Table, Groups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(&mut fk(JoinRequests::Table, JoinRequests::ApplicantId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_join_requests_group",
            JoinRequests::Table,
            &[JoinRequests::GroupId, JoinRequests::State],
        )
        .await?;
        index(
            m,
            "idx_join_requests_applicant",
            JoinRequests::Table,
            &[JoinRequests::ApplicantId, JoinRequests::State],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            JoinRequests::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
            Blocks::Table.into_iden(),
            Friendships::Table.into_iden(),
            FriendRequests::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// A reference to a user that disappears with the user row.
fn fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[derive(DeriveIden, Clone, Copy)]
enum FriendRequests {
    Table,
    Id,
    FromUserId,
    ToUserId,
    Note,
    State,
    CreatedAtMs,
    AnsweredAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Friendships {
    Table,
    UserId,
    FriendId,
    SinceMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Blocks {
    Table,
    UserId,
    BlockedId,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Groups {
    Table,
    Id,
    Name,
    OwnerId,
    Public,
    Slug,
    CreatedAtMs,
    DissolvedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupMembers {
    Table,
    GroupId,
    UserId,
    Role,
    JoinedAtMs,
    MutedUntilMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum JoinRequests {
    Table,
    Id,
    GroupId,
    ApplicantId,
    Note,
    State,
    CreatedAtMs,
    AnsweredAtMs,
    AnsweredBy,
}
