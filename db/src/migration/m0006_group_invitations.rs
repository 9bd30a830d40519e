//! Consent and system-owned groups: group invitations (a user who is not the inviter's friend
//! is invited, never added), the `system` flag of groups nobody owns (the DPC lobby), and the
//! creator of each group, which the hourly creation limit counts.
//!
//! Existing public groups with a slug become system-owned: their owner and admins (whoever
//! joined first, under the old rule) become plain members.

use sea_orm_migration::{prelude::*, schema::*};

use super::{index, m0001_accounts::Users, m0002_social::Groups};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `GroupRole` numbers (rosetta.social.v1).
const MEMBER: i16 = 1;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupInvitations::Table)
                .col(big_pk_auto(GroupInvitations::Id))
                .col(big_integer(GroupInvitations::GroupId))
                .col(big_integer(GroupInvitations::InviterId))
                .col(big_integer(GroupInvitations::InviteeId))
                .col(small_integer(GroupInvitations::State))
                .col(big_integer(GroupInvitations::CreatedAtMs))
                .col(big_integer_null(GroupInvitations::AnsweredAtMs))
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupInvitations::Table, GroupInvitations::GroupId)
                        .to(Groups::Table, Groups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(&mut user_fk(GroupInvitations::InviterId))
                .foreign_key(&mut user_fk(GroupInvitations::InviteeId))
                .to_owned(),
        )
        .await?;
        // "My invitations" and the pending-per-user limit; "already invited to this group".
        index(
            m,
            "idx_group_invitations_invitee",
            GroupInvitations::Table,
            &[
                GroupInvitations::InviteeId,
                GroupInvitations::State,
                GroupInvitations::GroupId,
            ],
        )
        .await?;
        index(
            m,
            "idx_group_invitations_inviter",
            GroupInvitations::Table,
            &[GroupInvitations::InviterId, GroupInvitations::State],
        )
        .await?;
        index(
            m,
            "idx_group_invitations_group",
            GroupInvitations::Table,
            &[GroupInvitations::GroupId, GroupInvitations::State],
        )
        .await?;

        // SQLite adds one column per ALTER.
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(boolean(GroupsExtra::System).default(false))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(big_integer_null(GroupsExtra::CreatedBy))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_groups_created_by",
            Groups::Table,
            &[GroupsExtra::CreatedBy, GroupsExtra::CreatedAtMs],
        )
        .await?;

        let db = m.get_connection();
        db.execute(
            &Query::update()
                .table(Groups::Table)
                .value(GroupsExtra::System, true)
                .and_where(Expr::col(Groups::Slug).is_not_null())
                .to_owned(),
        )
        .await?;
        db.execute(
            &Query::update()
                .table(Groups::Table)
                .value(GroupsExtra::CreatedBy, Expr::col(Groups::OwnerId))
                .and_where(Expr::col(Groups::Slug).is_null())
                .to_owned(),
        )
        .await?;
        db.execute(
            &Query::update()
                .table(GroupMembers::Table)
                .value(GroupMembers::Role, MEMBER)
                .and_where(Expr::col(GroupMembers::Role).gt(MEMBER))
                .and_where(
                    Expr::col(GroupMembers::GroupId).in_subquery(
                        Query::select()
                            .column(Groups::Id)
                            .from(Groups::Table)
                            .and_where(Expr::col(GroupsExtra::System).eq(true))
                            .to_owned(),
                    ),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_groups_created_by")
                .table(Groups::Table)
                .to_owned(),
        )
        .await?;
        for col in [GroupsExtra::CreatedBy, GroupsExtra::System] {
            m.alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(GroupInvitations::Table).to_owned())
            .await
    }
}

fn user_fk(col: GroupInvitations) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(GroupInvitations::Table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupInvitations {
    Table,
    Id,
    GroupId,
    InviterId,
    InviteeId,
    State,
    CreatedAtMs,
    AnsweredAtMs,
}

/// Columns this step adds to `groups` (and the one indexed with them).
#[derive(DeriveIden, Clone, Copy)]
enum GroupsExtra {
    System,
    CreatedBy,
    CreatedAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupMembers {
    Table,
    GroupId,
    Role,
}
