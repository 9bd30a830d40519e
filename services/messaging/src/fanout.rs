//! Fan-out on read for large groups (see the crate docs): the dispatcher that confirms
//! membership before a large group's message reaches this process's streams, and the reads a
//! stream needs to follow large groups by cursor.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use rosetta_db::entity::{
    messaging::{conversation, message, read_state},
    social::group_member,
};
use rosetta_kit::{ApiResult, tasks::Tasks};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _, Statement, Value,
    sea_query::Expr, sea_query::ExprTrait as _,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::{GroupWake, Hub};

/// Large-group wake-ups waiting for the dispatcher; past this the group's streams re-read
/// instead (see `Hub::deliver_group`).
const DISPATCH_QUEUE: usize = 1024;
/// Users per membership read (bind parameters).
const USERS_PER_READ: usize = 4096;
/// Groups per bounded member count (three bind parameters each).
const GROUPS_PER_COUNT: usize = 500;

/// Starts the dispatcher of `hub`'s large-group wake-ups in `tasks` (once per hub).
pub fn start_dispatcher(db: DatabaseConnection, hub: &Arc<Hub>, tasks: &Tasks) {
    let (dispatch, inbox) = mpsc::channel(DISPATCH_QUEUE);
    if hub.set_group_dispatch(dispatch) {
        tasks.spawn(dispatch_loop(
            db,
            hub.clone(),
            inbox,
            tasks.stopping().clone(),
        ));
    }
}

/// One wake-up at a time, in arrival order (so each group's messages keep their order): reads
/// which linked users are members now, and delivers to their streams only.
async fn dispatch_loop(
    db: DatabaseConnection,
    hub: Arc<Hub>,
    mut inbox: mpsc::Receiver<GroupWake>,
    stopping: CancellationToken,
) {
    loop {
        let wake = tokio::select! {
            wake = inbox.recv() => match wake {
                Some(wake) => wake,
                None => return,
            },
            () = stopping.cancelled() => return,
        };
        let users = hub.group_users(wake.group);
        if users.is_empty() {
            continue;
        }
        match members_among(&db, wake.group, &users).await {
            Ok(members) => hub.deliver_confirmed(wake.group, &wake.event, &members),
            Err(err) => {
                // Nothing delivered unconfirmed: the streams re-read, which checks again.
                tracing::warn!(%err, group = wake.group, "membership read failed; streams re-read");
                hub.reread_group(wake.group);
            }
        }
    }
}

/// Which of `users` are members of `group` now.
pub async fn members_among<C: ConnectionTrait>(
    db: &C,
    group: i64,
    users: &[i64],
) -> Result<HashSet<i64>, DbErr> {
    let mut members = HashSet::with_capacity(users.len());
    for chunk in users.chunks(USERS_PER_READ) {
        let rows: Vec<i64> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::UserId)
            .filter(group_member::Column::GroupId.eq(group))
            .filter(group_member::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        members.extend(rows);
    }
    Ok(members)
}

/// A large group `user` belongs to, as a stream starts following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeGroup {
    pub group: i64,
    pub joined_at_ms: i64,
    /// Its conversation, once it has one (created with its first message).
    pub conversation: Option<i64>,
    pub last_seq: u64,
    /// `max(last_read_seq, cleared_seq)` of the user in it.
    pub read_seq: u64,
}

/// `user`'s groups with more than `max_members` members (none when it is 0), with when the
/// user joined each: two statements whatever the count. [`describe`] completes them.
pub async fn large_groups_of<C: ConnectionTrait>(
    db: &C,
    user: i64,
    max_members: usize,
) -> ApiResult<Vec<(i64, i64)>> {
    if max_members == 0 {
        return Ok(Vec::new());
    }
    let mine: Vec<(i64, i64)> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .column(group_member::Column::JoinedAtMs)
        .filter(group_member::Column::UserId.eq(user))
        .into_tuple()
        .all(db)
        .await?;
    let joined: HashMap<i64, i64> = mine.iter().copied().collect();
    let groups: Vec<i64> = mine.iter().map(|&(group, _)| group).collect();
    let mut large: Vec<(i64, i64)> = larger_than(db, &groups, max_members)
        .await?
        .into_iter()
        .map(|group| (group, joined.get(&group).copied().unwrap_or(0)))
        .collect();
    large.sort_unstable();
    Ok(large)
}

/// Which of `groups` have more than `max_members` members (none when it is 0). Each group is
/// counted up to one past the bound, not in full: a lobby of every user would otherwise be
/// read whole for each batch of its messages and each of its members' streams.
pub async fn larger_than<C: ConnectionTrait>(
    db: &C,
    groups: &[i64],
    max_members: usize,
) -> Result<Vec<i64>, DbErr> {
    let mut large = Vec::new();
    if max_members == 0 {
        return Ok(large);
    }
    let backend = db.get_database_backend();
    let bound = i64::try_from(max_members).unwrap_or(i64::MAX - 1) + 1;
    for chunk in groups.chunks(GROUPS_PER_COUNT) {
        // One bounded count per group, UNION ALL: one statement for the chunk.
        let mut sql = String::new();
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for (i, &group) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            let p = values.len();
            let [g, g2, limit] = [p + 1, p + 2, p + 3].map(|n| placeholder(backend, n));
            sql.push_str(&format!(
                "SELECT CAST({g} AS BIGINT) AS group_id, (SELECT COUNT(*) FROM (SELECT 1 FROM \
                 group_members WHERE group_id = {g2} LIMIT {limit}) AS m) AS members"
            ));
            values.extend([group.into(), group.into(), bound.into()]);
        }
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        for row in rows {
            let members: i64 = row.try_get("", "members")?;
            if members >= bound {
                large.push(row.try_get("", "group_id")?);
            }
        }
    }
    Ok(large)
}

/// A bind parameter's placeholder in `backend`'s SQL.
pub(crate) fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".into(),
    }
}

/// Groups (with when `user` joined) of the group conversations in `cursors` that have
/// messages after the client's cursor, that `user` is a member of, and that are not in
/// `known`: a group that shrank to small while the client was away still has its large-era
/// messages to resume by cursor (they are in no log). Two statements.
pub async fn lagging_groups<C: ConnectionTrait>(
    db: &C,
    user: i64,
    cursors: &HashMap<i64, u64>,
    known: &HashSet<i64>,
) -> ApiResult<Vec<(i64, i64)>> {
    if cursors.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conversation::Entity::find()
        .filter(conversation::Column::Id.is_in(cursors.keys().copied()))
        .filter(conversation::Column::GroupId.is_not_null())
        .all(db)
        .await?;
    let lagging: Vec<i64> = rows
        .iter()
        .filter(|c| {
            cursors
                .get(&c.id)
                .is_some_and(|&seq| crate::log::to_u64(c.last_seq) > seq)
        })
        .filter_map(|c| c.group_id)
        .filter(|group| !known.contains(group))
        .collect();
    if lagging.is_empty() {
        return Ok(Vec::new());
    }
    let mut mine: Vec<(i64, i64)> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .column(group_member::Column::JoinedAtMs)
        .filter(group_member::Column::UserId.eq(user))
        .filter(group_member::Column::GroupId.is_in(lagging))
        .into_tuple()
        .all(db)
        .await?;
    mine.sort_unstable();
    Ok(mine)
}

/// The same for one group: `Some` when `user` is a member and the group is large.
pub async fn large_group<C: ConnectionTrait>(
    db: &C,
    user: i64,
    group: i64,
    max_members: usize,
) -> ApiResult<Option<LargeGroup>> {
    if max_members == 0 {
        return Ok(None);
    }
    let Some(me) = group_member::Entity::find_by_id((group, user))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let limit = u64::try_from(max_members)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let counted: Vec<i64> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if counted.len() <= max_members {
        return Ok(None);
    }
    Ok(describe(db, user, &[(group, me.joined_at_ms)]).await?.pop())
}

/// `groups` ((group, joined at)) with their conversation and `user`'s read state in it: two
/// statements.
pub async fn describe<C: ConnectionTrait>(
    db: &C,
    user: i64,
    groups: &[(i64, i64)],
) -> ApiResult<Vec<LargeGroup>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let conversations = conversation::Entity::find()
        .filter(conversation::Column::GroupId.is_in(groups.iter().map(|&(g, _)| g)))
        .all(db)
        .await?;
    let by_group: HashMap<i64, &conversation::Model> = conversations
        .iter()
        .filter_map(|c| Some((c.group_id?, c)))
        .collect();
    let reads: HashMap<i64, i64> = read_state::Entity::find()
        .filter(read_state::Column::UserId.eq(user))
        .filter(read_state::Column::ConversationId.is_in(conversations.iter().map(|c| c.id)))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.conversation_id, Ord::max(r.last_read_seq, r.cleared_seq)))
        .collect();
    Ok(groups
        .iter()
        .map(|&(group, joined_at_ms)| {
            let found = by_group.get(&group);
            LargeGroup {
                group,
                joined_at_ms,
                conversation: found.map(|c| c.id),
                last_seq: found.map_or(0, |c| crate::log::to_u64(c.last_seq)),
                read_seq: found
                    .and_then(|c| reads.get(&c.id))
                    .map_or(0, |&s| crate::log::to_u64(s)),
            }
        })
        .collect())
}

/// The conversation of `group`, if it has one yet.
pub async fn conversation_of<C: ConnectionTrait>(db: &C, group: i64) -> ApiResult<Option<i64>> {
    Ok(conversation::Entity::find()
        .select_only()
        .column(conversation::Column::Id)
        .filter(conversation::Column::GroupId.eq(group))
        .into_tuple()
        .one(db)
        .await?)
}

/// Up to `limit` messages of `conversation` after seq `after`, sent at or after `since_ms`,
/// oldest first.
pub async fn messages_after<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    after: u64,
    since_ms: i64,
    limit: u64,
) -> ApiResult<Vec<message::Model>> {
    Ok(message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation))
        .filter(message::Column::Seq.gt(crate::log::to_i64(after)))
        .filter(Expr::col(message::Column::SentAtMs).gte(since_ms))
        .order_by_asc(message::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use rosetta_db::testing::PgDatabase;

    use super::*;
    use crate::test_support::{group_of, user};

    /// Groups of 1, 2 and 3 members against bounds 0 (off), 1 and 2, on both backends.
    #[tokio::test]
    async fn larger_than_counts_up_to_the_bound() {
        let pg = PgDatabase::create().await;
        for db in [
            rosetta_db::connect("sqlite::memory:").await.unwrap(),
            rosetta_db::connect(&pg.url).await.unwrap(),
        ] {
            let (a, b, c) = (
                user(&db, "a").await,
                user(&db, "b").await,
                user(&db, "c").await,
            );
            let groups = [
                group_of(&db, &[a]).await,
                group_of(&db, &[a, b]).await,
                group_of(&db, &[a, b, c]).await,
            ];
            assert!(larger_than(&db, &groups, 0).await.unwrap().is_empty());
            assert_eq!(larger_than(&db, &groups, 1).await.unwrap(), groups[1..]);
            assert_eq!(larger_than(&db, &groups, 2).await.unwrap(), groups[2..]);
            assert!(larger_than(&db, &groups, 3).await.unwrap().is_empty());
        }
    }
}
