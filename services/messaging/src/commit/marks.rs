//! Read marks written with a batch of sends. A bridge whose protocol counts a pushed message
//! as read marks it without a receipt, a call for nearly every message it delivers: each as
//! its own write transaction they took as many write turns as the sends (on SQLite, turns
//! taken one after another). Queued to a lane instead, they ride in its next batch: one
//! statement for all of a batch's marks, after its sends. A mark covers messages already
//! committed (the bridge saw them only then), and is clamped to the conversation's newest
//! message as the batch sees it.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, sea_query::Value};

use crate::fanout::placeholder;

/// Marks per statement: 3 parameters each, far below both backends' limits.
const ROWS: usize = 4096;

/// Moves `user`'s read mark in a conversation to `up_to` (0: its newest message), never past
/// the newest message and never backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub conversation_id: i64,
    pub user: i64,
    pub up_to: u64,
}

/// Applies `marks`; returns each mark's read seq afterwards, in order (0 when its
/// conversation does not exist).
pub(super) async fn apply(tx: &impl ConnectionTrait, marks: &[Mark]) -> Result<Vec<u64>, DbErr> {
    // One row per (conversation, user): PostgreSQL refuses to upsert a row twice in one
    // statement. Sorted, so lanes that share read-state rows lock them in one order.
    let mut wanted = BTreeMap::<(i64, i64), i64>::new();
    for mark in marks {
        let up_to = i64::try_from(mark.up_to).unwrap_or(i64::MAX);
        let slot = wanted
            .entry((mark.conversation_id, mark.user))
            .or_insert(up_to);
        // 0 (everything) covers any other; otherwise the furthest mark wins.
        *slot = if *slot == 0 || up_to == 0 {
            0
        } else {
            (*slot).max(up_to)
        };
    }
    let wanted: Vec<((i64, i64), i64)> = wanted.into_iter().collect();
    let mut read = BTreeMap::<(i64, i64), i64>::new();
    for chunk in wanted.chunks(ROWS) {
        for row in tx
            .query_all_raw(upsert(tx.get_database_backend(), chunk))
            .await?
        {
            let key = (
                row.try_get::<i64>("", "conversation_id")?,
                row.try_get::<i64>("", "user_id")?,
            );
            read.insert(key, row.try_get("", "last_read_seq")?);
        }
    }
    Ok(marks
        .iter()
        .map(|m| {
            let seq = read.get(&(m.conversation_id, m.user)).copied();
            u64::try_from(seq.unwrap_or(0)).unwrap_or(0)
        })
        .collect())
}

/// One upsert for `rows` ((conversation, user), up_to): each mark clamped to its
/// conversation's `last_seq` (which the batch's own sends have moved), kept if further.
fn upsert(backend: DatabaseBackend, rows: &[((i64, i64), i64)]) -> Statement {
    let mut sql = String::from("WITH v (conversation_id, user_id, up_to) AS (VALUES ");
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 3);
    for (i, &((conversation, user), up_to)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (column, value) in [conversation, user, up_to].into_iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            values.push(value.into());
            sql.push_str(&placeholder(backend, values.len()));
        }
        sql.push(')');
    }
    let greatest = match backend {
        DatabaseBackend::Postgres => "GREATEST",
        _ => "MAX",
    };
    // `WHERE true`: SQLite needs it to tell an upsert's ON CONFLICT from a join's ON.
    sql.push_str(&format!(
        ") INSERT INTO read_states (conversation_id, user_id, last_read_seq, cleared_seq) \
         SELECT c.id, v.user_id, \
         CASE WHEN v.up_to = 0 OR v.up_to > c.last_seq THEN c.last_seq ELSE v.up_to END, 0 \
         FROM v JOIN conversations c ON c.id = v.conversation_id WHERE true \
         ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_seq = \
         {greatest}(read_states.last_read_seq, excluded.last_read_seq) \
         RETURNING conversation_id, user_id, last_read_seq"
    ));
    Statement::from_sql_and_values(backend, sql, values)
}
