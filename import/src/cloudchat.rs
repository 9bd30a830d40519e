//! CloudChat (Homat3/CloudChat, `cloudchat`): section 3 of `shared/legacy-schemas.md`.
//!
//! Mapping: `users.id` is kept as the Rosetta user id (the login reply and "search by id" show
//! it); the plaintext password becomes verifiers for every password form, as Register makes
//! them, and is dropped; the e-mail is kept (unverified) when it looks like one and is free;
//! the avatar string is kept, except the registration default `default.png`, which becomes
//! Rosetta's default (no avatar; the bridge shows `default.png` for it); `created_at` is kept.
//! Tokens, `online` and `last_active` are session state and are not imported.
//! `friends` rows (one per pair, either order) become friendships; `friend_requests` that are
//! `pending` become pending requests, `refused` ones refused requests (the clients list them),
//! and `accepted` ones are skipped (the `friends` table holds what they made). The name and
//! avatar snapshots of a request are stale copies and are not imported. `messages` become
//! private text messages keyed by their id; `is_read` becomes each reader's read mark.
//! There are no groups and no files (their senders were stubs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rosetta_db::entity::{social::friend_request, user};
use rosetta_proto::social::v1::RequestState;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    QueryFilter as _,
};

use crate::{
    Options, Summary,
    legacy::{self, int, rows, text, truncate, valid_email},
    write::{self, NewMessage, NewUser, Password, Target},
};

const USERS: &str = "users";
const FRIEND_REQUESTS: &str = "friend requests";
const MESSAGES: &str = "messages";

/// The avatar CloudChat gives every new account.
const DEFAULT_AVATAR: &str = "default.png";
const REJECTED: i16 = RequestState::Rejected as i16;

/// Imports the CloudChat database at `from` into `target`.
pub async fn import(
    from: &str,
    target: &DatabaseConnection,
    options: &Options,
) -> anyhow::Result<Summary> {
    let pool = legacy::connect(from, "CloudChat").await?;
    let mut s = Summary::new(options.dry_run);
    if options.files_dir.is_some() {
        s.note("--files-dir ignored: CloudChat stored no files (its file senders were stubs)");
    }
    let legacy = Legacy::read(&pool, &mut s).await?;
    pool.close().await;
    let now = rosetta_db::now_ms();

    // Users first: everything else refers to them.
    let mut known = BTreeSet::new();
    let mut new_users = Vec::new();
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut emails: BTreeSet<String> = BTreeSet::new();
    for row in &legacy.users {
        s.read(USERS);
        let Some(mut u) = plan_user(row, &mut s) else {
            continue;
        };
        if let Some(other) = names.insert(u.username.to_lowercase(), u.id) {
            s.skip(
                USERS,
                format!("user name differs only in case from id {other}'s"),
            );
            continue;
        }
        if let Some(email) = u.email.take() {
            if emails.insert(email.clone()) {
                u.email = Some(email);
            } else {
                s.note("e-mail shared with an earlier id (ignoring case): left empty");
            }
        }
        match write::slot(target, u.id, &u.username).await? {
            write::Slot::Already => {
                s.already(USERS, 1);
                known.insert(u.id);
                continue;
            }
            write::Slot::Taken(why) => {
                s.skip(USERS, why);
                continue;
            }
            write::Slot::Free => {}
        }
        if let Some(email) = &u.email
            && write::user_with(target, user::Column::Email, email).await?
        {
            s.note("e-mail already used by another Rosetta account: left empty");
            u.email = None;
        }
        known.insert(u.id);
        new_users.push(u);
    }
    let tx = write::create_users(target, &new_users, options.dry_run, &mut s, USERS).await?;

    // Friendships: one row per pair, but nothing stopped (B, A) beside (A, B). The table
    // keeps no date: friends since the import.
    let mut friendships = write::Friendships::default();
    let imported = |id: i64| known.contains(&id).then_some(id);
    for &(a, b) in &legacy.friends {
        friendships.add(&mut s, imported(a), imported(b), now);
    }
    friendships.write(&tx, &mut s).await?;

    // Friend requests, oldest first.
    for r in &legacy.requests {
        s.read(FRIEND_REQUESTS);
        let (from, to) = (r.requester, r.target);
        if from == to {
            s.skip(FRIEND_REQUESTS, "a request to oneself");
            continue;
        }
        if !known.contains(&from) || !known.contains(&to) {
            s.skip(FRIEND_REQUESTS, "names a user that was not imported");
            continue;
        }
        // The friendships above are written already (in this transaction).
        let friends = write::are_friends(&tx, from, to).await?;
        match r.status.as_str() {
            "pending" => {
                if friends {
                    s.skip(FRIEND_REQUESTS, "pending, but the two are friends already");
                } else if write::pending_friend_request(&tx, from, to).await? {
                    s.already(FRIEND_REQUESTS, 1);
                } else if write::pending_friend_request(&tx, to, from).await? {
                    s.skip(
                        FRIEND_REQUESTS,
                        "pending, but the other side's request is pending already",
                    );
                } else {
                    write::insert_friend_request(&tx, from, to, "", now).await?;
                    s.imported(FRIEND_REQUESTS, 1);
                }
            }
            "refused" => {
                if refused_request(&tx, from, to).await? {
                    s.already(FRIEND_REQUESTS, 1);
                } else {
                    insert_refused_request(&tx, from, to, now).await?;
                    s.imported(FRIEND_REQUESTS, 1);
                }
            }
            "accepted" if friends => {
                s.skip(FRIEND_REQUESTS, "accepted: the friends table holds it");
            }
            "accepted" => s.skip(
                FRIEND_REQUESTS,
                "accepted, but no friends row (the contact was deleted since)",
            ),
            _ => s.skip(FRIEND_REQUESTS, "status not pending, accepted or refused"),
        }
    }

    // Messages, per conversation.
    write::import_private(
        &tx,
        plan_messages(&legacy.messages, &known, now, &mut s),
        &mut s,
        MESSAGES,
    )
    .await?;

    write::finish(tx, options.dry_run).await?;
    Ok(s)
}

/// One `users` row (token, online and last_active are not read).
struct UserRow {
    id: Option<i64>,
    username: String,
    email: String,
    password: String,
    avatar: String,
    /// `UNIX_TIMESTAMP(created_at)`: the column is in the server's zone, as is the session.
    created_at: Option<i64>,
}

struct RequestRow {
    requester: i64,
    target: i64,
    status: String,
}

/// One `messages` row.
struct MessageRow {
    id: i64,
    sender: i64,
    receiver: i64,
    kind: String,
    content: String,
    /// Whether any of `file_name`, `file_size`, `file_path` holds something ('' and 0 = none).
    has_file: bool,
    read: bool,
    created_at: i64,
}

/// Everything read from the legacy database.
#[derive(Default)]
struct Legacy {
    users: Vec<UserRow>,
    friends: Vec<(i64, i64)>,
    requests: Vec<RequestRow>,
    messages: Vec<MessageRow>,
}

impl Legacy {
    async fn read(pool: &sqlx::MySqlPool, s: &mut Summary) -> anyhow::Result<Self> {
        let mut l = Legacy::default();
        for r in rows(
            pool,
            "users",
            "SELECT CAST(id AS SIGNED), CAST(username AS BINARY), CAST(email AS BINARY), \
             CAST(password AS BINARY), CAST(avatar AS BINARY), \
             CAST(UNIX_TIMESTAMP(created_at) AS SIGNED) FROM users ORDER BY id",
            s,
        )
        .await?
        {
            l.users.push(UserRow {
                id: int(&r, 0)?,
                username: text(&r, 1, s)?,
                email: text(&r, 2, s)?,
                password: text(&r, 3, s)?,
                avatar: text(&r, 4, s)?,
                created_at: int(&r, 5)?,
            });
        }
        for r in rows(
            pool,
            "friends",
            "SELECT CAST(user_id1 AS SIGNED), CAST(user_id2 AS SIGNED) FROM friends \
             ORDER BY user_id1, user_id2",
            s,
        )
        .await?
        {
            l.friends
                .push((int(&r, 0)?.unwrap_or(0), int(&r, 1)?.unwrap_or(0)));
        }
        for r in rows(
            pool,
            "friend_requests",
            "SELECT CAST(requester_id AS SIGNED), CAST(target_id AS SIGNED), \
             CAST(status AS BINARY) FROM friend_requests ORDER BY id",
            s,
        )
        .await?
        {
            l.requests.push(RequestRow {
                requester: int(&r, 0)?.unwrap_or(0),
                target: int(&r, 1)?.unwrap_or(0),
                status: text(&r, 2, s)?,
            });
        }
        for r in rows(
            pool,
            "messages",
            "SELECT CAST(id AS SIGNED), CAST(sender_id AS SIGNED), CAST(receiver_id AS SIGNED), \
             CAST(message_type AS BINARY), CAST(content AS BINARY), CAST(file_name AS BINARY), \
             CAST(file_size AS SIGNED), CAST(file_path AS BINARY), CAST(is_read AS SIGNED), \
             CAST(created_at AS SIGNED) FROM messages ORDER BY id",
            s,
        )
        .await?
        {
            let has_file = !text(&r, 5, s)?.is_empty()
                || int(&r, 6)?.unwrap_or(0) != 0
                || !text(&r, 7, s)?.is_empty();
            l.messages.push(MessageRow {
                id: int(&r, 0)?.unwrap_or(0),
                sender: int(&r, 1)?.unwrap_or(0),
                receiver: int(&r, 2)?.unwrap_or(0),
                kind: text(&r, 3, s)?,
                content: text(&r, 4, s)?,
                has_file,
                read: int(&r, 8)?.unwrap_or(0) != 0,
                created_at: int(&r, 9)?.unwrap_or(0),
            });
        }
        Ok(l)
    }
}

fn plan_user(row: &UserRow, s: &mut Summary) -> Option<NewUser> {
    let Some(id) = row.id.filter(|id| *id > 0) else {
        s.skip(USERS, "id not positive");
        return None;
    };
    let name = &row.username;
    let name_ok = (1..=64).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '|');
    if !name_ok {
        s.skip(USERS, "user name empty, too long, or with spaces or '|'");
        return None;
    }
    // Compared verbatim by the old server, so kept verbatim (spaces included).
    if row.password.is_empty() {
        s.skip(USERS, "empty password");
        return None;
    }
    let email = valid_email(&row.email);
    if email.is_none() {
        s.note("e-mail empty or not an address: left empty");
    }
    let avatar = if row.avatar == DEFAULT_AVATAR {
        String::new()
    } else {
        if row.avatar.chars().count() > 512 {
            s.note("avatar longer than 512 characters: cut");
        }
        truncate(&row.avatar, 512)
    };
    let created_at_ms = match row.created_at {
        Some(secs) if secs > 0 => Some(secs * 1000),
        _ => {
            s.note("user created_at zero or missing: created_at = import time");
            None
        }
    };
    Some(NewUser {
        id,
        username: name.clone(),
        password: Password::Plain(row.password.clone()),
        nickname: truncate(name, 64),
        avatar,
        signature: String::new(),
        vip: false,
        gender: 0,
        email,
        phone: None,
        question_id: 0,
        answer: None,
        ocid: None,
        created_at_ms,
    })
}

async fn refused_request<C: ConnectionTrait>(db: &C, from: i64, to: i64) -> anyhow::Result<bool> {
    Ok(friend_request::Entity::find()
        .filter(friend_request::Column::FromUserId.eq(from))
        .filter(friend_request::Column::ToUserId.eq(to))
        .filter(friend_request::Column::State.eq(REJECTED))
        .one(db)
        .await?
        .is_some())
}

/// A refused request, kept because CloudChat clients list answered requests too. The table
/// has no times: asked and answered at the import.
async fn insert_refused_request<C: ConnectionTrait>(
    db: &C,
    from: i64,
    to: i64,
    now: i64,
) -> anyhow::Result<()> {
    friend_request::Entity::insert(friend_request::ActiveModel {
        from_user_id: Set(from),
        to_user_id: Set(to),
        note: Set(String::new()),
        state: Set(REJECTED),
        created_at_ms: Set(now),
        answered_at_ms: Set(Some(now)),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Builds every private conversation's messages, in (time, id) order.
///
/// Rosetta keeps one read mark per reader and conversation, so a reader has read everything
/// before their first unread message and nothing from it on. Every message from a reader's
/// first unread one on is therefore listed as unread for that reader: this keeps the read
/// marks where `is_read` puts them and the messages in their time order (the writer puts
/// unread messages after read ones).
fn plan_messages(
    rows: &[MessageRow],
    known: &BTreeSet<i64>,
    now: i64,
    s: &mut Summary,
) -> BTreeMap<Target, Vec<NewMessage>> {
    // Per conversation: the messages with their legacy read flag.
    let mut planned: BTreeMap<Target, Vec<(NewMessage, bool)>> = BTreeMap::new();
    for row in rows {
        s.read(MESSAGES);
        let reason = if !known.contains(&row.sender) || !known.contains(&row.receiver) {
            Some("names a user that was not imported")
        } else if row.sender == row.receiver {
            Some("message to oneself")
        } else if row.kind != "text" {
            Some("not a text message (image and file sending were stubs; no bytes exist)")
        } else if row.content.is_empty() {
            Some("empty content")
        } else if row.content.len() > 16 * 1024 {
            Some("text over 16 KiB")
        } else {
            None
        };
        if let Some(reason) = reason {
            s.skip(MESSAGES, reason);
            continue;
        }
        if row.has_file {
            s.note("file columns set on a text message: ignored (no file was stored)");
        }
        let sent_at_ms = if row.created_at > 0 {
            row.created_at * 1000
        } else {
            s.note("message created_at zero or negative: sent_at = import time");
            now
        };
        let message = NewMessage {
            client_message_id: format!("cloudchat:m{}", row.id),
            sender: row.sender,
            to_user: Some(row.receiver),
            client_time: row.created_at.to_string(),
            sent_at_ms,
            text: row.content.clone(),
            unread_for: BTreeSet::new(),
            order: usize::try_from(row.id).unwrap_or_default(),
        };
        planned
            .entry(Target::pair(row.sender, row.receiver))
            .or_default()
            .push((message, row.read));
    }
    let mut out = BTreeMap::new();
    for (conv, mut messages) in planned {
        messages.sort_by_key(|(m, _)| (m.sent_at_ms, m.order));
        let mut unread_from: BTreeSet<i64> = BTreeSet::new();
        for (m, read) in &mut messages {
            let reader = m.to_user.unwrap_or_default();
            if !*read {
                unread_from.insert(reader);
            } else if unread_from.contains(&reader) {
                s.note("read message after an unread one for the same reader: imported unread");
            }
            m.unread_for.clone_from(&unread_from);
        }
        out.insert(conv, messages.into_iter().map(|(m, _)| m).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, sender: i64, receiver: i64, read: bool, created_at: i64) -> MessageRow {
        MessageRow {
            id,
            sender,
            receiver,
            kind: "text".into(),
            content: format!("m{id}"),
            has_file: false,
            read,
            created_at,
        }
    }

    #[test]
    fn unread_tails_keep_time_order() {
        let rows = [
            row(1, 2, 1, true, 100),
            row(2, 1, 2, true, 160),
            row(3, 2, 1, false, 220),
            row(4, 1, 2, false, 280),
            row(5, 2, 1, true, 340),
        ];
        let known = BTreeSet::from([1, 2]);
        let mut s = Summary::new(false);
        let planned = plan_messages(&rows, &known, 0, &mut s);
        let messages = &planned[&Target::Pair(1, 2)];
        let unread: Vec<Vec<i64>> = messages
            .iter()
            .map(|m| m.unread_for.iter().copied().collect())
            .collect();
        assert_eq!(
            unread,
            [vec![], vec![], vec![1], vec![1, 2], vec![1, 2]],
            "everything from a reader's first unread message on is unread for them"
        );
        assert_eq!(s.notes.len(), 1, "{s}");
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(valid_email(" A@B.com "), Some("a@b.com".into()));
        assert_eq!(valid_email("not-an-email"), None);
        assert_eq!(valid_email(""), None);
    }
}
