//! Reading a legacy MySQL/MariaDB database: the connection, whole-table queries that
//! tolerate missing tables, and column values read as bytes and decoded with the charset
//! traps of `shared/legacy-schemas.md` in mind.

use anyhow::Context as _;
use sqlx::{Row as _, mysql::MySqlRow};

use crate::Summary;

/// A small pool on the legacy database (`what` names the system in errors).
pub async fn connect(from: &str, what: &str) -> anyhow::Result<sqlx::MySqlPool> {
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(from)
        .await
        .with_context(|| format!("connect to the {what} database {from}"))
}

/// All rows of one query; a missing table reads as empty (older dumps lack some tables).
pub async fn rows(
    pool: &sqlx::MySqlPool,
    table: &str,
    sql: &'static str,
    s: &mut Summary,
) -> anyhow::Result<Vec<MySqlRow>> {
    match sqlx::query(sql).fetch_all(pool).await {
        Ok(rows) => Ok(rows),
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42S02") => {
            s.note(format!(
                "table {table} does not exist: nothing read from it"
            ));
            Ok(Vec::new())
        }
        Err(err) => Err(anyhow::Error::new(err).context(format!("read the legacy table {table}"))),
    }
}

pub fn int(r: &MySqlRow, i: usize) -> anyhow::Result<Option<i64>> {
    Ok(r.try_get::<Option<i64>, _>(i)?)
}

pub fn text(r: &MySqlRow, i: usize, s: &mut Summary) -> anyhow::Result<String> {
    let bytes: Option<Vec<u8>> = r.try_get(i)?;
    Ok(bytes.map(|b| decode(b, s)).unwrap_or_default())
}

/// Column bytes (read as binary, whatever the column's declared charset) to text: UTF-8 bytes
/// kept in a latin1 column are recovered as UTF-8; anything else is read as latin1.
pub fn decode(bytes: Vec<u8>, s: &mut Summary) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => {
            if text.contains('?') {
                s.note("text contains '?': CJK text may have been lost by the latin1 columns");
            }
            text
        }
        Err(err) => {
            s.note("text not valid UTF-8: read as latin1");
            err.into_bytes().iter().map(|&b| char::from(b)).collect()
        }
    }
}

pub fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A lowercase e-mail address, if the text looks like one (the account service's rule).
pub fn valid_email(text: &str) -> Option<String> {
    let email = text.trim().to_ascii_lowercase();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}
