//! Policy epochs: one counter per user, bumped by every change to who that user may message
//! (friendships, blocks, group membership, roles, mutes, dissolution), in the transaction that
//! makes the change. Messaging caches its decisions tagged with the sender's epoch and checks
//! the epoch again inside each message's write transaction, so a cached decision is never
//! used after the change that voids it, in any process.
//!
//! A user without a row has epoch 0; a row is created by the first bump or by messaging before
//! it first caches a decision for the user (so that there is a row to lock).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to users: a deleted account keeps its row, and an epoch never needs
        // more than its primary key.
        m.create_table(
            Table::create()
                .table(PolicyEpochs::Table)
                .col(big_integer(PolicyEpochs::UserId).primary_key())
                .col(big_integer(PolicyEpochs::Epoch))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PolicyEpochs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum PolicyEpochs {
    Table,
    UserId,
    Epoch,
}
