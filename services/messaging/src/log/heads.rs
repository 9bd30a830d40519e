//! Log heads and log rows: the seqs a batch of events takes in each recipient's log, and the
//! rows that store them.
//!
//! A head is locked from the moment a writer moves it until that writer commits, and every
//! writer to the same users' logs waits for it meanwhile. So the heads are moved last, in as
//! few round trips as possible: on PostgreSQL one statement moves them and inserts the rows.

use std::collections::{BTreeMap, HashMap};

use rosetta_db::entity::messaging::{event_head, user_event};
use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DatabaseBackend, DbErr, EntityTrait as _, QueryResult, Statement,
    sea_query::{Alias, Expr, ExprTrait as _, InsertStatement, OnConflict, Query, Value},
};

/// Rows per multi-row statement, well below SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 4096;

/// One log row to write: the recipient and the index of its event's payload.
pub(super) type Row = (i64, usize);

/// Moves each user's head on by their count (`counts`, by user id) and stores `rows`, each
/// user's in seq order; returns, per user, the first seq reserved.
pub(super) async fn append_rows<C: ConnectionTrait>(
    tx: &C,
    counts: &BTreeMap<i64, i64>,
    rows: &[Row],
    payloads: &[Vec<u8>],
    at_ms: i64,
) -> Result<HashMap<i64, i64>, DbErr> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let fits = rows.len() <= ROWS_PER_STATEMENT && counts.len() <= ROWS_PER_STATEMENT;
    if tx.get_database_backend() == DatabaseBackend::Postgres && fits {
        let heads = tx
            .query_all_raw(reserve_and_insert(counts, rows, payloads, at_ms))
            .await?;
        return first_seqs(heads, counts);
    }
    let first = reserve(tx, counts).await?;
    let mut next = first.clone();
    let mut models = Vec::with_capacity(rows.len());
    for &(user, event) in rows {
        let seq = next
            .get_mut(&user)
            .ok_or_else(|| DbErr::Custom(format!("no log head reserved for {user}")))?;
        models.push(user_event::ActiveModel {
            user_id: Set(user),
            seq: Set(*seq),
            at_ms: Set(at_ms),
            payload: Set(payloads[event].clone()),
        });
        *seq += 1;
    }
    for chunk in models.chunks(ROWS_PER_STATEMENT) {
        user_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(tx)
            .await?;
    }
    Ok(first)
}

/// PostgreSQL: the heads' upsert (as [`reserve`]) and the rows' insert as one statement, the
/// rows taking their seqs back from each user's new head:
///
/// ```sql
/// WITH h AS (INSERT INTO event_heads … ON CONFLICT … RETURNING user_id, last_seq),
///      e AS (INSERT INTO user_events SELECT v.user_id, h.last_seq - v.back, … FROM (VALUES …) v JOIN h …)
/// SELECT user_id, last_seq FROM h
/// ```
fn reserve_and_insert(
    counts: &BTreeMap<i64, i64>,
    rows: &[Row],
    payloads: &[Vec<u8>],
    at_ms: i64,
) -> Statement {
    let mut values: Vec<Value> = Vec::with_capacity(1 + counts.len() * 2 + rows.len() * 3);
    // $1 is the events' time, shared by every row.
    values.push(at_ms.into());
    let mut sql = String::from("WITH h AS (INSERT INTO event_heads (user_id, last_seq) VALUES ");
    for (i, (&user, &n)) in counts.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        sql.push_str(&format!(
            "{sep}(${}, ${})",
            values.len() + 1,
            values.len() + 2
        ));
        values.extend([user.into(), n.into()]);
    }
    sql.push_str(
        " ON CONFLICT (user_id) DO UPDATE SET last_seq = event_heads.last_seq + \
         excluded.last_seq RETURNING user_id, last_seq), \
         e AS (INSERT INTO user_events (user_id, seq, at_ms, payload) \
         SELECT v.user_id, h.last_seq - v.back, $1::bigint, v.payload FROM (VALUES ",
    );
    // How many of each user's rows are still to come: the last row has the head's seq.
    let mut left: HashMap<i64, i64> = counts.iter().map(|(&user, &n)| (user, n)).collect();
    for (i, &(user, event)) in rows.iter().enumerate() {
        let back = left.get_mut(&user).map_or(0, |n| {
            *n -= 1;
            *n
        });
        let p = values.len();
        let sep = if i > 0 { ", " } else { "" };
        sql.push_str(&format!(
            "{sep}(${}::bigint, ${}::bigint, ${}::bytea)",
            p + 1,
            p + 2,
            p + 3
        ));
        values.extend([user.into(), back.into(), payloads[event].clone().into()]);
    }
    sql.push_str(
        ") AS v (user_id, back, payload) JOIN h ON h.user_id = v.user_id) \
         SELECT user_id, last_seq FROM h",
    );
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// Moves each user's log head on by their count of new events; returns, per user, the first
/// seq reserved.
///
/// One upsert per chunk: new heads start at their count, existing ones count on. Its rows
/// are in user id order, and PostgreSQL locks the heads it updates in the order of its rows,
/// so two fan-outs over overlapping users lock them in the same order and cannot deadlock
/// (SQLite has a single writer).
async fn reserve<C: ConnectionTrait>(
    tx: &C,
    counts: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let pairs: Vec<(i64, i64)> = counts.iter().map(|(&user, &n)| (user, n)).collect();
    let mut heads = Vec::new();
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = heads_insert(chunk)?;
        upsert
            .on_conflict(
                OnConflict::column(event_head::Column::UserId)
                    .value(
                        event_head::Column::LastSeq,
                        Expr::col((event_head::Entity, event_head::Column::LastSeq)).add(
                            Expr::col((Alias::new("excluded"), event_head::Column::LastSeq)),
                        ),
                    )
                    .to_owned(),
            )
            .returning(
                Query::returning()
                    .columns([event_head::Column::UserId, event_head::Column::LastSeq]),
            );
        heads.extend(tx.query_all(&upsert).await?);
    }
    first_seqs(heads, counts)
}

/// The first reserved seq per user, from the heads' new `last_seq`s.
fn first_seqs(
    heads: Vec<QueryResult>,
    counts: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    heads
        .into_iter()
        .map(|row| {
            let user: i64 = row.try_get("", "user_id")?;
            let last: i64 = row.try_get("", "last_seq")?;
            Ok((user, last - counts.get(&user).copied().unwrap_or(1) + 1))
        })
        .collect()
}

/// `INSERT INTO event_heads (user_id, last_seq)`, one row per `(user, count)`, in order.
fn heads_insert(counts: &[(i64, i64)]) -> Result<InsertStatement, DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(event_head::Entity)
        .columns([event_head::Column::UserId, event_head::Column::LastSeq]);
    for &(user, n) in counts {
        insert
            .values([user.into(), n.into()])
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    Ok(insert)
}
