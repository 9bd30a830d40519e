//! Accounts: users, password verifiers, sessions, legacy tokens, verification codes and
//! throttling counters.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// User ids start here so that the first 900 users have three-digit ids, the range the pipe
/// protocol's clients render identically in all of their id formats.
const FIRST_USER_ID: i64 = 100;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(big_pk_auto(Users::Id))
                .col(string_uniq(Users::Username))
                .col(string_uniq(Users::Ocid))
                .col(string_null(Users::Email).unique_key())
                .col(string_null(Users::Phone).unique_key())
                .col(string(Users::Nickname))
                .col(string(Users::Avatar))
                .col(text(Users::Signature))
                .col(small_integer(Users::Gender))
                .col(boolean(Users::Vip))
                .col(integer(Users::SecurityQuestionId))
                .col(string_null(Users::SecurityAnswerHash))
                .col(big_integer(Users::CreatedAtMs))
                .col(big_integer_null(Users::DeletedAtMs))
                .to_owned(),
        )
        .await?;
        let start = match m.get_database_backend() {
            DatabaseBackend::Sqlite => Some(format!(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('users', {})",
                FIRST_USER_ID - 1
            )),
            DatabaseBackend::Postgres => Some(format!(
                "ALTER SEQUENCE users_id_seq RESTART WITH {FIRST_USER_ID}"
            )),
            _ => None,
        };
        if let Some(sql) = start {
            m.get_connection().execute_unprepared(&sql).await?;
        }

        m.create_table(
            Table::create()
                .table(Credentials::Table)
                .col(big_integer(Credentials::UserId))
                .col(small_integer(Credentials::Scheme))
                .col(string(Credentials::Verifier))
                .col(big_integer(Credentials::CreatedAtMs))
                .primary_key(
                    Index::create()
                        .col(Credentials::UserId)
                        .col(Credentials::Scheme),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Credentials::Table, Credentials::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(string(Sessions::Id).primary_key())
                .col(big_integer(Sessions::UserId))
                .col(string_uniq(Sessions::RefreshHash))
                .col(string_null(Sessions::PrevRefreshHash))
                .col(big_integer(Sessions::RefreshExpiresAtMs))
                .col(big_integer(Sessions::CreatedAtMs))
                .col(big_integer(Sessions::LastUsedAtMs))
                .col(big_integer_null(Sessions::RevokedAtMs))
                .col(string(Sessions::Client))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_sessions_user", Sessions::UserId),
            ("idx_sessions_prev_refresh", Sessions::PrevRefreshHash),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Sessions::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table(LegacyTokens::Table)
                .col(big_integer(LegacyTokens::UserId))
                .col(string(LegacyTokens::Protocol))
                .col(string(LegacyTokens::TokenHash))
                .col(string(LegacyTokens::SessionId))
                .col(big_integer(LegacyTokens::CreatedAtMs))
                .primary_key(
                    Index::create()
                        .col(LegacyTokens::UserId)
                        .col(LegacyTokens::Protocol),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(LegacyTokens::Table, LegacyTokens::SessionId)
                        .to(Sessions::Table, Sessions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VerificationCodes::Table)
                .col(small_integer(VerificationCodes::Channel))
                .col(string(VerificationCodes::Target))
                .col(small_integer(VerificationCodes::Purpose))
                .col(string(VerificationCodes::CodeHash))
                .col(big_integer(VerificationCodes::ExpiresAtMs))
                .col(integer(VerificationCodes::Attempts))
                .col(big_integer(VerificationCodes::SentAtMs))
                .col(big_integer(VerificationCodes::WindowStartMs))
                .col(integer(VerificationCodes::SendsInWindow))
                .primary_key(
                    Index::create()
                        .col(VerificationCodes::Channel)
                        .col(VerificationCodes::Target),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Throttles::Table)
                .col(string(Throttles::Key).primary_key())
                .col(integer(Throttles::Failures))
                .col(big_integer(Throttles::LockedUntilMs))
                .col(big_integer(Throttles::UpdatedAtMs))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Throttles::Table.into_iden(),
            VerificationCodes::Table.into_iden(),
            LegacyTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Credentials::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    Ocid,
    Email,
    Phone,
    Nickname,
    Avatar,
    Signature,
    Gender,
    Vip,
    SecurityQuestionId,
    SecurityAnswerHash,
    CreatedAtMs,
    DeletedAtMs,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    UserId,
    Scheme,
    Verifier,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    RefreshHash,
    PrevRefreshHash,
    RefreshExpiresAtMs,
    CreatedAtMs,
    LastUsedAtMs,
    RevokedAtMs,
    Client,
}

#[derive(DeriveIden)]
enum LegacyTokens {
    Table,
    UserId,
    Protocol,
    TokenHash,
    SessionId,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum VerificationCodes {
    Table,
    Channel,
    Target,
    Purpose,
    CodeHash,
    ExpiresAtMs,
    Attempts,
    SentAtMs,
    WindowStartMs,
    SendsInWindow,
}

#[derive(DeriveIden)]
enum Throttles {
    Table,
    Key,
    Failures,
    LockedUntilMs,
    UpdatedAtMs,
}
