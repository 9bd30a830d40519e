//! Messaging: conversations with their sequence counters, messages, per-user read state, the
//! per-user durable event log with its counters, and presence.
//!
//! Counters (`conversations.last_seq`, `event_heads.last_seq`) are rows updated inside the
//! transaction that uses the number: the row lock (PostgreSQL) or the single writer (SQLite)
//! serializes allocators, so sequences have no gaps and no duplicates.

use sea_orm_migration::{prelude::*, schema::*};

use super::{index, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Conversations::Table)
                .col(big_pk_auto(Conversations::Id))
                .col(small_integer(Conversations::Kind))
                // "u:<lo>:<hi>" or "g:<group>": finds or creates a conversation race-free.
                .col(string_uniq(Conversations::Key))
                .col(big_integer_null(Conversations::GroupId))
                .col(big_integer_null(Conversations::UserLo))
                .col(big_integer_null(Conversations::UserHi))
                .col(big_integer(Conversations::LastSeq))
                .col(big_integer(Conversations::LastMessageId))
                .col(big_integer(Conversations::LastAtMs))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_conversations_lo",
            Conversations::Table,
            &[Conversations::UserLo],
        )
        .await?;
        index(
            m,
            "idx_conversations_hi",
            Conversations::Table,
            &[Conversations::UserHi],
        )
        .await?;
        index(
            m,
            "idx_conversations_group",
            Conversations::Table,
            &[Conversations::GroupId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(big_pk_auto(Messages::Id))
                .col(big_integer(Messages::ConversationId))
                .col(big_integer(Messages::Seq))
                .col(big_integer(Messages::SenderId))
                .col(big_integer_null(Messages::ToUserId))
                .col(big_integer_null(Messages::ToGroupId))
                .col(small_integer(Messages::Kind))
                .col(text(Messages::Text))
                .col(string(Messages::FileId))
                .col(big_integer(Messages::ReplyToId))
                .col(string(Messages::ClientMessageId))
                .col(string(Messages::ClientTime))
                .col(big_integer(Messages::SentAtMs))
                .col(boolean(Messages::Recalled))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "uq_messages_seq",
            Messages::Table,
            &[Messages::ConversationId, Messages::Seq],
        )
        .await?;
        // The idempotency key: a retried send can never store a second row.
        unique(
            m,
            "uq_messages_client_id",
            Messages::Table,
            &[Messages::SenderId, Messages::ClientMessageId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReadStates::Table)
                .col(big_integer(ReadStates::ConversationId))
                .col(big_integer(ReadStates::UserId))
                .col(big_integer(ReadStates::LastReadSeq))
                .col(big_integer(ReadStates::ClearedSeq))
                .primary_key(
                    Index::create()
                        .col(ReadStates::ConversationId)
                        .col(ReadStates::UserId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(EventHeads::Table)
                .col(big_integer(EventHeads::UserId).primary_key())
                .col(big_integer(EventHeads::LastSeq))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserEvents::Table)
                .col(big_integer(UserEvents::UserId))
                .col(big_integer(UserEvents::Seq))
                .col(big_integer(UserEvents::AtMs))
                .col(blob(UserEvents::Payload))
                .primary_key(Index::create().col(UserEvents::UserId).col(UserEvents::Seq))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Presences::Table)
                .col(big_integer(Presences::UserId).primary_key())
                .col(small_integer(Presences::Status))
                .col(big_integer(Presences::LastActiveMs))
                .col(small_integer(Presences::Announced))
                .col(double_null(Presences::Latitude))
                .col(double_null(Presences::Longitude))
                .col(string_null(Presences::LocationClientTime))
                .col(big_integer_null(Presences::LocationAtMs))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_presences_sweep",
            Presences::Table,
            &[Presences::Announced, Presences::LastActiveMs],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Presences::Table.into_iden(),
            UserEvents::Table.into_iden(),
            EventHeads::Table.into_iden(),
            ReadStates::Table.into_iden(),
            Messages::Table.into_iden(),
            Conversations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
    Id,
    Kind,
    Key,
    GroupId,
    UserLo,
    UserHi,
    LastSeq,
    LastMessageId,
    LastAtMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    ToUserId,
    ToGroupId,
    Kind,
    Text,
    FileId,
    ReplyToId,
    ClientMessageId,
    ClientTime,
    SentAtMs,
    Recalled,
}

#[derive(DeriveIden, Clone, Copy)]
enum ReadStates {
    Table,
    ConversationId,
    UserId,
    LastReadSeq,
    ClearedSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventHeads {
    Table,
    UserId,
    LastSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserEvents {
    Table,
    UserId,
    Seq,
    AtMs,
    Payload,
}

#[derive(DeriveIden, Clone, Copy)]
enum Presences {
    Table,
    UserId,
    Status,
    LastActiveMs,
    Announced,
    Latitude,
    Longitude,
    LocationClientTime,
    LocationAtMs,
}
