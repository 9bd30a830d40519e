//! One batch of sends in ONE transaction, with a number of statements that does not grow with
//! the batch (each multi-row statement is chunked below the bind-parameter limits, which a
//! batch of [`MAX_BATCH`](super::MAX_BATCH) never reaches):
//!
//! 1. [`Policy::confirm`] — first thing, so a send refused since its admission fails;
//! 2. the batch's conversations' `last_seq`, read in one statement (locked in id order on
//!    PostgreSQL: lanes and processes then cannot deadlock); seqs are assigned in memory in
//!    queue order;
//! 3. one multi-row `INSERT INTO messages … ON CONFLICT (sender_id, client_message_id) DO
//!    NOTHING RETURNING *` — fewer rows back means retries: roll back and report them;
//! 4. one update of the conversation rows (`last_seq`, `last_message_id`, `last_at_ms`
//!    together: one row update per conversation per batch);
//! 5. one multi-row upsert of the senders' read marks;
//! 6. one count of the members of the batch's groups, then one read of the members of its
//!    small ones (private chats need neither; with fan-out on read turned off, no count);
//! 7. [`Events::append_all`] — the fan-out into every recipient's log. A large group's
//!    message gets no log row at all: it is woken once, for the group, and read by cursor
//!    (see the crate docs);
//! 8. one upsert of the read marks queued with the sends ([`super::marks`]).

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap, hash_map::Entry},
};

use rosetta_db::entity::{
    messaging::{conversation, message, read_state},
    social::group_member,
};
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::messaging::v1::{Event, event::Kind};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait as _, FromQueryResult as _, QueryFilter as _, QuerySelect as _, Statement,
    sea_query::{Expr, ExprTrait as _, LockType, OnConflict, Order, Query, Value},
};

use super::{Draft, Mark, Recipient, Stored, marks};
use crate::{
    conversations::Members,
    convert,
    fanout::{self, placeholder},
    log::Events,
    policy::Policy,
    presence,
};

/// Message rows per INSERT: 13 parameters each, 13,312 in all, below SQLite's 32,766 and
/// PostgreSQL's 65,535.
const MESSAGE_ROWS: usize = 1024;
/// Rows of at most 4 parameters per other statement (conversation updates, read marks, ids).
const SMALL_ROWS: usize = 4096;

/// What became of a batch.
pub(super) enum Written {
    /// Committed: each draft's outcome in batch order, and the stored events to wake.
    Committed {
        outcomes: Vec<ApiResult<Stored>>,
        /// Each mark's read seq afterwards, in order.
        read: Vec<u64>,
        deliveries: Vec<(i64, Event)>,
        /// Large groups' messages: (group, event with seq 0), one each.
        group_deliveries: Vec<(i64, Event)>,
    },
    /// Rolled back, nothing written: these drafts (batch index, in index order) repeat a
    /// stored message, here; the others are to be written again without them.
    Duplicates(Vec<(usize, message::Model)>),
}

/// What a draft of the batch does.
enum Part {
    /// Refused by the policy confirmation.
    Refused(ApiError),
    /// Stored by this batch.
    Write,
    /// Repeats the (sender, client id) of this earlier draft of the batch: answered with its
    /// message, as a duplicate.
    Echo(usize),
}

/// Writes `drafts` and `marks` in one transaction: see the module docs.
pub(super) async fn write(
    db: &DatabaseConnection,
    policy: &Policy,
    drafts: &[&Draft],
    marks: &[Mark],
    fanout_max_members: usize,
) -> Result<Written, DbErr> {
    let tx = rosetta_db::begin_write(db).await?;
    let admissions: Vec<_> = drafts.iter().map(|d| d.admission).collect();
    let confirmed = policy.confirm(&*tx, &admissions).await?;
    if confirmed.len() != drafts.len() {
        return Err(DbErr::Custom(format!(
            "the policy confirmed {} of {} sends",
            confirmed.len(),
            drafts.len()
        )));
    }
    let parts = plan(drafts, confirmed);
    let writes: Vec<usize> = (0..drafts.len())
        .filter(|&i| matches!(parts[i], Part::Write))
        .collect();
    let mut stored: HashMap<usize, message::Model> = HashMap::with_capacity(writes.len());
    let (mut deliveries, mut group_deliveries) = (Vec::new(), Vec::new());
    let mut present = HashMap::new();
    if !writes.is_empty() {
        let recipients: Vec<i64> = writes
            .iter()
            .filter_map(|&i| recipient(drafts[i]))
            .collect();
        present = presence::liveness_of(&*tx, &recipients).await?;
        let seqs = assign_seqs(&*tx, drafts, &writes).await?;
        let inserted = insert_messages(&*tx, drafts, &writes, &seqs).await?;
        let by_key: HashMap<(i64, &str), &message::Model> = inserted
            .iter()
            .map(|m| ((m.sender_id, m.client_message_id.as_str()), m))
            .collect();
        let mut missing = Vec::new();
        for &i in &writes {
            let key = (drafts[i].sender(), drafts[i].req.client_message_id.as_str());
            match by_key.get(&key) {
                Some(&model) => {
                    stored.insert(i, model.clone());
                }
                None => missing.push(i),
            }
        }
        if !missing.is_empty() {
            let found = find_stored(&*tx, drafts, &missing).await?;
            // Dropping `tx` rolls the batch back: none of its seqs were used.
            return Ok(Written::Duplicates(found));
        }
        let written: Vec<(&Draft, &message::Model)> = writes
            .iter()
            .filter_map(|&i| Some((drafts[i], stored.get(&i)?)))
            .collect();
        update_conversations(&*tx, &written).await?;
        mark_read(&*tx, &written).await?;
        (deliveries, group_deliveries) = fan_out(&*tx, &written, fanout_max_members).await?;
    }
    let read = if marks.is_empty() {
        Vec::new()
    } else {
        marks::apply(&*tx, marks).await?
    };
    tx.commit().await?;
    let outcomes = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let (at, duplicate) = match part {
                Part::Refused(err) => return Err(err),
                Part::Write => (i, false),
                Part::Echo(first) => (first, true),
            };
            let message = stored
                .get(&at)
                .cloned()
                .ok_or_else(|| ApiError::internal("a written send has no stored message"))?;
            let recipient = match recipient(drafts[at]) {
                Some(user) => Recipient::Read(present.get(&user).copied()),
                None => Recipient::Unread,
            };
            Ok(Stored {
                message,
                duplicate,
                recipient,
            })
        })
        .collect();
    Ok(Written::Committed {
        outcomes,
        read,
        deliveries,
        group_deliveries,
    })
}

/// The other user of a private send (the sender, writing to themselves); none for a group.
fn recipient(draft: &Draft) -> Option<i64> {
    match draft.conversation.members {
        Members::Pair(lo, hi) => Some(if lo == draft.sender() { hi } else { lo }),
        Members::Group(_) => None,
    }
}

/// Sorts the drafts into refused ones, the first of each (sender, client id) — written — and
/// later repeats in the same batch.
fn plan(drafts: &[&Draft], confirmed: Vec<ApiResult<()>>) -> Vec<Part> {
    let mut first: HashMap<(i64, &str), usize> = HashMap::with_capacity(drafts.len());
    drafts
        .iter()
        .zip(confirmed)
        .enumerate()
        .map(|(i, (draft, confirmed))| match confirmed {
            Err(err) => Part::Refused(err),
            Ok(()) => match first.entry((draft.sender(), draft.req.client_message_id.as_str())) {
                Entry::Occupied(earlier) => Part::Echo(*earlier.get()),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    Part::Write
                }
            },
        })
        .collect()
}

/// Reads (and on PostgreSQL locks, in id order) the written conversations' `last_seq` and
/// numbers the writes on from it, in batch order; returns each write's seq, aligned with
/// `writes`.
async fn assign_seqs(
    tx: &impl ConnectionTrait,
    drafts: &[&Draft],
    writes: &[usize],
) -> Result<Vec<i64>, DbErr> {
    let ids: BTreeSet<i64> = writes.iter().map(|&i| drafts[i].conversation.id).collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut last = HashMap::with_capacity(ids.len());
    // Chunks in ascending id order keep the lock order.
    for chunk in ids.chunks(SMALL_ROWS) {
        let mut select = Query::select()
            .columns([conversation::Column::Id, conversation::Column::LastSeq])
            .from(conversation::Entity)
            .and_where(Expr::col(conversation::Column::Id).is_in(chunk.iter().copied()))
            .order_by(conversation::Column::Id, Order::Asc)
            .to_owned();
        if tx.get_database_backend() == DatabaseBackend::Postgres {
            select.lock(LockType::Update);
        }
        for row in tx.query_all(&select).await? {
            let id: i64 = row.try_get("", "id")?;
            last.insert(id, row.try_get::<i64>("", "last_seq")?);
        }
    }
    writes
        .iter()
        .map(|&i| {
            let id = drafts[i].conversation.id;
            let seq = last
                .get_mut(&id)
                .ok_or_else(|| DbErr::RecordNotFound(format!("conversation {id}")))?;
            *seq += 1;
            Ok(*seq)
        })
        .collect()
}

/// Inserts the written drafts' messages; returns the rows stored (a retried send's row is
/// skipped: its key is already taken).
async fn insert_messages(
    tx: &impl ConnectionTrait,
    drafts: &[&Draft],
    writes: &[usize],
    seqs: &[i64],
) -> Result<Vec<message::Model>, DbErr> {
    use message::Column as C;
    let rows: Vec<(&Draft, i64)> = writes
        .iter()
        .zip(seqs)
        .map(|(&i, &seq)| (drafts[i], seq))
        .collect();
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(MESSAGE_ROWS) {
        let mut insert = Query::insert();
        insert.into_table(message::Entity).columns([
            C::ConversationId,
            C::Seq,
            C::SenderId,
            C::ToUserId,
            C::ToGroupId,
            C::Kind,
            C::Text,
            C::FileId,
            C::ReplyToId,
            C::ClientMessageId,
            C::ClientTime,
            C::SentAtMs,
            C::Recalled,
        ]);
        for &(draft, seq) in chunk {
            let (to_user, to_group) = match draft.conversation.members {
                Members::Pair(lo, hi) => (Some(if draft.sender() == lo { hi } else { lo }), None),
                Members::Group(group) => (None, Some(group)),
            };
            let req = &draft.req;
            insert
                .values([
                    draft.conversation.id.into(),
                    seq.into(),
                    draft.sender().into(),
                    to_user.into(),
                    to_group.into(),
                    i16::try_from(req.kind).unwrap_or_default().into(),
                    req.text.clone().into(),
                    req.file_id.clone().into(),
                    req.reply_to_id.into(),
                    req.client_message_id.clone().into(),
                    req.client_time.clone().into(),
                    draft.now.into(),
                    false.into(),
                ])
                .map_err(|err| DbErr::Custom(err.to_string()))?;
        }
        insert
            .on_conflict(
                OnConflict::columns([C::SenderId, C::ClientMessageId])
                    .do_nothing()
                    .to_owned(),
            )
            .returning(Query::returning().all());
        for row in tx.query_all(&insert).await? {
            stored.push(message::Model::from_query_result(&row, "")?);
        }
    }
    Ok(stored)
}

/// The stored messages that the drafts at `missing` repeat, paired with their batch index.
async fn find_stored(
    tx: &impl ConnectionTrait,
    drafts: &[&Draft],
    missing: &[usize],
) -> Result<Vec<(usize, message::Model)>, DbErr> {
    let mut found = Vec::with_capacity(missing.len());
    // Retries are rare: a handful of keys, in statements of at most SMALL_ROWS / 2 pairs.
    for chunk in missing.chunks(SMALL_ROWS / 2) {
        let mut keys = Condition::any();
        for &i in chunk {
            keys = keys.add(
                Condition::all()
                    .add(message::Column::SenderId.eq(drafts[i].sender()))
                    .add(
                        message::Column::ClientMessageId
                            .eq(drafts[i].req.client_message_id.as_str()),
                    ),
            );
        }
        let rows = message::Entity::find().filter(keys).all(tx).await?;
        for &i in chunk {
            let key = (drafts[i].sender(), &drafts[i].req.client_message_id);
            if let Some(model) = rows
                .iter()
                .find(|m| (m.sender_id, &m.client_message_id) == key)
            {
                found.push((i, model.clone()));
            }
        }
    }
    if found.len() < missing.len() {
        // Skipped by the key yet not stored: something else conflicted. Fail the batch (and
        // so write its sends alone) rather than report a retry that is none.
        return Err(DbErr::Custom(
            "a send was not stored and repeats no stored message".into(),
        ));
    }
    Ok(found)
}

/// One row update per conversation: its newest seq, message and time.
async fn update_conversations(
    tx: &impl ConnectionTrait,
    written: &[(&Draft, &message::Model)],
) -> Result<(), DbErr> {
    let mut newest = BTreeMap::<i64, &message::Model>::new();
    for &(_, model) in written {
        let entry = newest.entry(model.conversation_id).or_insert(model);
        if model.seq > entry.seq {
            *entry = model;
        }
    }
    let backend = tx.get_database_backend();
    let rows: Vec<&message::Model> = newest.into_values().collect();
    for chunk in rows.chunks(SMALL_ROWS) {
        // A VALUES list joined to the table: portable (PostgreSQL, SQLite >= 3.33), one
        // statement for any number of conversations.
        let mut sql =
            String::from("WITH v (id, last_seq, last_message_id, last_at_ms) AS (VALUES ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (row, model) in chunk.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (column, value) in [model.conversation_id, model.seq, model.id, model.sent_at_ms]
                .into_iter()
                .enumerate()
            {
                if column > 0 {
                    sql.push_str(", ");
                }
                values.push(value.into());
                sql.push_str(&placeholder(backend, values.len()));
            }
            sql.push(')');
        }
        sql.push_str(
            ") UPDATE conversations SET last_seq = v.last_seq, \
             last_message_id = v.last_message_id, last_at_ms = v.last_at_ms \
             FROM v WHERE conversations.id = v.id",
        );
        tx.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Moves each sender's read mark to their newest message of the batch. That seq is its
/// conversation's highest (read and clear marks never pass `last_seq`), so the mark can only
/// move forward.
async fn mark_read(
    tx: &impl ConnectionTrait,
    written: &[(&Draft, &message::Model)],
) -> Result<(), DbErr> {
    // One row per (conversation, sender): PostgreSQL refuses to upsert a row twice in one
    // statement.
    let mut marks = BTreeMap::<(i64, i64), i64>::new();
    for &(_, model) in written {
        let mark = marks
            .entry((model.conversation_id, model.sender_id))
            .or_default();
        *mark = Ord::max(*mark, model.seq);
    }
    let marks: Vec<((i64, i64), i64)> = marks.into_iter().collect();
    for chunk in marks.chunks(SMALL_ROWS) {
        let rows = chunk.iter().map(
            |&((conversation_id, user_id), seq)| read_state::ActiveModel {
                conversation_id: sea_orm::ActiveValue::Set(conversation_id),
                user_id: sea_orm::ActiveValue::Set(user_id),
                last_read_seq: sea_orm::ActiveValue::Set(seq),
                cleared_seq: sea_orm::ActiveValue::Set(0),
            },
        );
        read_state::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    read_state::Column::ConversationId,
                    read_state::Column::UserId,
                ])
                .update_column(read_state::Column::LastReadSeq)
                .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}

/// Appends each written message to its recipients' logs, in batch order: a private chat's
/// two users, a small group's members as of this transaction. A large group's message is
/// returned apart, to wake the group once.
async fn fan_out(
    tx: &impl ConnectionTrait,
    written: &[(&Draft, &message::Model)],
    fanout_max_members: usize,
) -> Result<(Vec<(i64, Event)>, Vec<(i64, Event)>), DbErr> {
    let groups: BTreeSet<i64> = written
        .iter()
        .filter_map(|(draft, _)| match draft.conversation.members {
            Members::Group(group) => Some(group),
            Members::Pair(..) => None,
        })
        .collect();
    let listed: Vec<i64> = groups.iter().copied().collect();
    let large: BTreeSet<i64> = fanout::larger_than(tx, &listed, fanout_max_members)
        .await?
        .into_iter()
        .collect();
    let small: Vec<i64> = groups.difference(&large).copied().collect();
    let mut members = HashMap::<i64, Vec<i64>>::new();
    for chunk in small.chunks(SMALL_ROWS) {
        let rows: Vec<(i64, i64)> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::GroupId)
            .column(group_member::Column::UserId)
            .filter(group_member::Column::GroupId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(tx)
            .await?;
        for (group, user) in rows {
            members.entry(group).or_default().push(user);
        }
    }
    let mut group_deliveries = Vec::new();
    let mut events: Vec<(Cow<'_, [i64]>, Kind)> = Vec::with_capacity(written.len());
    for (draft, model) in written {
        let kind = Kind::Message(convert::message(model));
        let recipients = match draft.conversation.members {
            Members::Pair(lo, hi) => Cow::Owned(vec![lo, hi]),
            Members::Group(group) if large.contains(&group) => {
                let event = Event {
                    seq: 0,
                    at_ms: model.sent_at_ms,
                    kind: Some(kind),
                };
                group_deliveries.push((group, event));
                continue;
            }
            Members::Group(group) => {
                Cow::Borrowed(members.get(&group).map_or(&[][..], Vec::as_slice))
            }
        };
        events.push((recipients, kind));
    }
    let events: Vec<(&[i64], &Kind)> = events
        .iter()
        .map(|(recipients, kind)| (recipients.as_ref(), kind))
        .collect();
    let at_ms = written
        .iter()
        .map(|(draft, _)| draft.now)
        .max()
        .unwrap_or_else(rosetta_db::now_ms);
    let deliveries = Events::append_all(tx, &events, at_ms).await?;
    Ok((deliveries, group_deliveries))
}
