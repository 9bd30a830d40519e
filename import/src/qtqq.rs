//! QtQQ (UgOrange/QtQQ, `QQ_Database`): section 1 of `shared/legacy-schemas.md`.
//!
//! Mapping: `user.userid` is kept as the Rosetta user id (it is the uid pipe clients show);
//! passwords (MD5 hex as the client sent it) become the account service's `MD5_HEX` argon2id
//! verifier, a non-hex value (hand-written test rows) a plain password; the security answer is
//! hashed like Register does (its `|0`/`|1` residue stripped); the signature loses the
//! `|<qid>|<answer>` the update_profile bug appended. `friend_info` pairs become friendships,
//! `friend_apply` pending friend requests, `group_chat_info` groups with their client-chosen
//! ids (owner = the admin row, name from it), `group_chat_management` pending join requests.
//! `single_chat_history` / `group_chat_history` rows are read messages; `temperary_message` rows
//! (the offline queue) are messages still unread by their `recv_id`. Tokens and online flags
//! are not imported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::DatabaseConnection;
use sha2::{Digest as _, Sha256};
use sqlx::{Row as _, mysql::MySqlRow};

use crate::{
    Options, Summary,
    legacy::{self, decode, int, rows, text, truncate},
    write::{self, NewMessage, NewUser, Password, Target},
};

const USERS: &str = "users";
const FRIEND_REQUESTS: &str = "friend requests";
const GROUPS: &str = "groups";
const MEMBERS: &str = "group members";
const JOIN_REQUESTS: &str = "join requests";
const MESSAGES: &str = "messages";

/// Imports the QtQQ database at `from` into `target`.
pub async fn import(
    from: &str,
    target: &DatabaseConnection,
    options: &Options,
) -> anyhow::Result<Summary> {
    let pool = legacy::connect(from, "QtQQ").await?;
    let mut s = Summary::new(options.dry_run);
    if options.files_dir.is_some() {
        s.note("--files-dir ignored: QtQQ stored no files (send_file was peer to peer)");
    }
    let legacy = Legacy::read(&pool, &mut s).await?;
    pool.close().await;
    let now = rosetta_db::now_ms();

    // Users first: everything else refers to them.
    let mut known: BTreeSet<i64> = BTreeSet::new();
    let mut new_users = Vec::new();
    let mut seen_names: HashMap<String, i64> = HashMap::new();
    for row in &legacy.users {
        s.read(USERS);
        let Some(u) = plan_user(row, &mut s) else {
            continue;
        };
        if let Some(other) = seen_names.insert(u.username.to_lowercase(), u.id) {
            s.skip(
                USERS,
                format!("user name differs only in case from uid {other}'s"),
            );
            continue;
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
        known.insert(u.id);
        new_users.push(u);
    }
    let tx = write::create_users(target, &new_users, options.dry_run, &mut s, USERS).await?;

    // Friendships: unordered pairs, duplicates and one-directional rows merged.
    let mut friendships = write::Friendships::default();
    let imported = |id: i64| known.contains(&id).then_some(id);
    for &(a, b) in &legacy.friends {
        friendships.add(&mut s, imported(a), imported(b), now);
    }
    friendships.write(&tx, &mut s).await?;

    // Pending friend requests (applicant → object).
    for (object, applicant, note) in &legacy.friend_applies {
        s.read(FRIEND_REQUESTS);
        let (from, to) = (*applicant, *object);
        if from == to {
            s.skip(FRIEND_REQUESTS, "a request to oneself");
        } else if !known.contains(&from) || !known.contains(&to) {
            s.skip(FRIEND_REQUESTS, "names a user that was not imported");
        } else if write::are_friends(&tx, from, to).await? {
            s.skip(FRIEND_REQUESTS, "already friends");
        } else if write::pending_friend_request(&tx, from, to).await? {
            s.already(FRIEND_REQUESTS, 1);
        } else if write::pending_friend_request(&tx, to, from).await? {
            s.skip(
                FRIEND_REQUESTS,
                "the other side's request is pending already",
            );
        } else {
            write::insert_friend_request(&tx, from, to, note, now).await?;
            s.imported(FRIEND_REQUESTS, 1);
        }
    }

    // Groups: one row per (group, member); the admin row names the group and its owner.
    let mut by_group: BTreeMap<i64, Vec<&GroupRow>> = BTreeMap::new();
    for row in &legacy.group_rows {
        by_group.entry(row.group).or_default().push(row);
    }
    let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (&gid, rows) in &by_group {
        s.read(GROUPS);
        if gid <= 0 {
            s.skip(GROUPS, "group id not positive");
            continue;
        }
        let mut members: Vec<(i64, i16)> = Vec::new();
        let mut name = None;
        for row in rows {
            s.read(MEMBERS);
            if !known.contains(&row.member) {
                s.skip(MEMBERS, "names a user that was not imported");
                continue;
            }
            if let Some(m) = members.iter_mut().find(|(u, _)| *u == row.member) {
                if row.admin && m.1 == write::ROLE_MEMBER {
                    m.1 = write::ROLE_ADMIN;
                }
                s.skip(MEMBERS, "duplicate (group, member) row");
                continue;
            }
            if row.admin && name.is_none() {
                name = Some(row.name.clone().unwrap_or_default());
                members.push((row.member, write::ROLE_OWNER));
            } else {
                let role = if row.admin {
                    write::ROLE_ADMIN
                } else {
                    write::ROLE_MEMBER
                };
                members.push((row.member, role));
            }
        }
        if members.is_empty() {
            s.skip(GROUPS, "no imported member");
            continue;
        }
        if name.is_none() {
            // No admin row: the lowest member id owns it; the name was never known.
            s.note("group without an admin row: owner = lowest member id, name = its id");
            members.sort_unstable();
            members[0].1 = write::ROLE_OWNER;
        }
        let name = name
            .filter(|n| !n.is_empty())
            .map_or_else(|| gid.to_string(), |n| truncate(&n, 64));
        let owner = members
            .iter()
            .find(|(_, r)| *r == write::ROLE_OWNER)
            .map(|(u, _)| *u)
            .unwrap_or_default();
        match write::find_group(&tx, gid).await? {
            Some(existing) if existing.owner_id == owner => {
                s.already(GROUPS, 1);
            }
            Some(_) => {
                s.skip(GROUPS, "id already used by another Rosetta group");
                continue;
            }
            None => {
                write::insert_group(&tx, gid, &name, owner, now).await?;
                s.imported(GROUPS, 1);
            }
        }
        for &(member, role) in &members {
            if write::ensure_member(&tx, gid, member, role, now).await? {
                s.imported(MEMBERS, 1);
            } else {
                s.already(MEMBERS, 1);
            }
        }
        groups.insert(gid, members.iter().map(|(u, _)| *u).collect());
    }

    // Pending join requests.
    for (applicant, group_text, note) in &legacy.join_requests {
        s.read(JOIN_REQUESTS);
        let Ok(gid) = group_text.trim().parse::<i64>() else {
            s.skip(JOIN_REQUESTS, "group id not numeric");
            continue;
        };
        let Some(members) = groups.get(&gid) else {
            s.skip(JOIN_REQUESTS, "names a group that was not imported");
            continue;
        };
        if !known.contains(applicant) {
            s.skip(JOIN_REQUESTS, "names a user that was not imported");
        } else if members.contains(applicant) {
            s.skip(JOIN_REQUESTS, "applicant is a member already");
        } else if write::pending_join_request(&tx, gid, *applicant).await? {
            s.already(JOIN_REQUESTS, 1);
        } else {
            write::insert_join_request(&tx, gid, *applicant, note, now).await?;
            s.imported(JOIN_REQUESTS, 1);
        }
    }

    // Messages, grouped by conversation.
    let conversations = plan_messages(&legacy, &known, &groups, now, &mut s);
    for (target_conv, messages) in conversations {
        let participants: Vec<i64> = match target_conv {
            Target::Pair(lo, hi) => vec![lo, hi],
            Target::Group(gid) => groups.get(&gid).cloned().unwrap_or_default(),
        };
        let (imported, already) =
            write::import_conversation(&tx, target_conv, messages, &participants).await?;
        s.imported(MESSAGES, imported);
        s.already(MESSAGES, already);
    }

    write::finish(tx, options.dry_run).await?;
    Ok(s)
}

/// One `user` row.
struct UserRow {
    id: Option<i64>,
    name: String,
    password: String,
    nickname: String,
    signature: String,
    icon: String,
    vip: bool,
    question: i64,
    answer: String,
}

struct GroupRow {
    group: i64,
    member: i64,
    name: Option<String>,
    admin: bool,
}

/// A stored message row of any of the three message tables.
struct MessageRow {
    /// `single_chat_history.chat_info_id`, `group_chat_history.group_chat_info_id`, or the
    /// queue's `group_chat_info_id` (0 = private).
    conv: i64,
    poster: i64,
    /// The queue's `recv_id`.
    recv: i64,
    time: String,
    content: String,
}

/// Everything read from the legacy database.
#[derive(Default)]
struct Legacy {
    users: Vec<UserRow>,
    friends: Vec<(i64, i64)>,
    friend_applies: Vec<(i64, i64, String)>,
    chat_infos: HashMap<i64, (i64, i64)>,
    private_history: Vec<MessageRow>,
    group_rows: Vec<GroupRow>,
    join_requests: Vec<(i64, String, String)>,
    group_history: Vec<MessageRow>,
    queue: Vec<MessageRow>,
}

impl Legacy {
    async fn read(pool: &sqlx::MySqlPool, s: &mut Summary) -> anyhow::Result<Self> {
        let mut l = Legacy::default();
        for r in rows(
            pool,
            "user",
            "SELECT CAST(userid AS SIGNED), CAST(user_name AS BINARY), CAST(password AS BINARY), \
             CAST(nickname AS BINARY), CAST(signature AS BINARY), \
             CAST(head_portrait_id AS BINARY), CAST(VIP AS SIGNED), \
             CAST(password_protect_id AS SIGNED), CAST(answer AS BINARY) \
             FROM `user` ORDER BY userid",
            s,
        )
        .await?
        {
            l.users.push(UserRow {
                id: int(&r, 0)?,
                name: text(&r, 1, s)?,
                password: text(&r, 2, s)?,
                nickname: text(&r, 3, s)?,
                signature: text(&r, 4, s)?,
                icon: text(&r, 5, s)?,
                vip: int(&r, 6)?.unwrap_or(0) != 0,
                question: int(&r, 7)?.unwrap_or(0),
                answer: text(&r, 8, s)?,
            });
        }
        for r in rows(
            pool,
            "friend_info",
            "SELECT CAST(userid AS SIGNED), CAST(friend_id AS SIGNED) FROM friend_info",
            s,
        )
        .await?
        {
            l.friends
                .push((int(&r, 0)?.unwrap_or(0), int(&r, 1)?.unwrap_or(0)));
        }
        for r in rows(
            pool,
            "friend_apply",
            "SELECT CAST(object_id AS SIGNED), CAST(applicant_id AS SIGNED), \
             CAST(friend_apply_message AS BINARY) FROM friend_apply",
            s,
        )
        .await?
        {
            l.friend_applies.push((
                int(&r, 0)?.unwrap_or(0),
                int(&r, 1)?.unwrap_or(0),
                note(&text(&r, 2, s)?),
            ));
        }
        for r in rows(
            pool,
            "single_chat_info",
            "SELECT CAST(single_chat_info_id AS SIGNED), CAST(member_id1 AS SIGNED), \
             CAST(member_id2 AS SIGNED) FROM single_chat_info",
            s,
        )
        .await?
        {
            l.chat_infos.insert(
                int(&r, 0)?.unwrap_or(0),
                (int(&r, 1)?.unwrap_or(0), int(&r, 2)?.unwrap_or(0)),
            );
        }
        for r in rows(
            pool,
            "single_chat_history",
            "SELECT CAST(chat_info_id AS SIGNED), CAST(poster_id AS SIGNED), \
             CAST(`time` AS BINARY), CAST(content AS BINARY) FROM single_chat_history",
            s,
        )
        .await?
        {
            l.private_history.push(message_row(&r, None, s)?);
        }
        for r in rows(
            pool,
            "group_chat_info",
            "SELECT CAST(group_chat_info_id AS SIGNED), CAST(member_id AS SIGNED), \
             CAST(group_chat_name AS BINARY), CAST(group_chat_admin AS SIGNED) \
             FROM group_chat_info",
            s,
        )
        .await?
        {
            let name: Option<Vec<u8>> = r.try_get(2)?;
            l.group_rows.push(GroupRow {
                group: int(&r, 0)?.unwrap_or(0),
                member: int(&r, 1)?.unwrap_or(0),
                name: name.map(|b| decode(b, s)),
                admin: int(&r, 3)?.unwrap_or(0) != 0,
            });
        }
        for r in rows(
            pool,
            "group_chat_management",
            "SELECT CAST(applicant_id AS SIGNED), CAST(group_chat_id AS BINARY), \
             CAST(group_chat_management_message AS BINARY) FROM group_chat_management",
            s,
        )
        .await?
        {
            l.join_requests.push((
                int(&r, 0)?.unwrap_or(0),
                text(&r, 1, s)?,
                note(&text(&r, 2, s)?),
            ));
        }
        for r in rows(
            pool,
            "group_chat_history",
            "SELECT CAST(group_chat_info_id AS SIGNED), CAST(poster_id AS SIGNED), \
             CAST(`time` AS BINARY), CAST(content AS BINARY) FROM group_chat_history",
            s,
        )
        .await?
        {
            l.group_history.push(message_row(&r, None, s)?);
        }
        for r in rows(
            pool,
            "temperary_message",
            "SELECT CAST(group_chat_info_id AS SIGNED), CAST(poster_id AS SIGNED), \
             CAST(`time` AS BINARY), CAST(content AS BINARY), CAST(recv_id AS SIGNED) \
             FROM temperary_message",
            s,
        )
        .await?
        {
            let recv = int(&r, 4)?.unwrap_or(0);
            l.queue.push(message_row(&r, Some(recv), s)?);
        }
        Ok(l)
    }
}

fn message_row(r: &MySqlRow, recv: Option<i64>, s: &mut Summary) -> anyhow::Result<MessageRow> {
    Ok(MessageRow {
        conv: int(r, 0)?.unwrap_or(0),
        poster: int(r, 1)?.unwrap_or(0),
        recv: recv.unwrap_or(0),
        time: text(r, 2, s)?,
        content: text(r, 3, s)?,
    })
}

/// Request notes: the column default is the two-character literal `""`.
fn note(text: &str) -> String {
    if text == "\"\"" {
        String::new()
    } else {
        text.to_owned()
    }
}

fn plan_user(row: &UserRow, s: &mut Summary) -> Option<NewUser> {
    let Some(id) = row.id.filter(|id| *id > 0) else {
        s.skip(USERS, "uid not positive");
        return None;
    };
    let name = &row.name;
    let name_ok = (1..=64).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '|');
    if !name_ok {
        s.skip(USERS, "user name empty, too long, or with spaces or '|'");
        return None;
    }
    let password = row.password.trim_end_matches(['\r', '\n', '\0']);
    let password = if password.len() == 32 && password.bytes().all(|b| b.is_ascii_hexdigit()) {
        Password::Md5Hex(password.to_ascii_lowercase())
    } else if password.is_empty() {
        s.skip(USERS, "empty password");
        return None;
    } else {
        s.note("password not MD5 hex (hand-written test row): imported as a plain password");
        Password::Plain(password.to_owned())
    };
    let answer = row.answer.trim();
    let answer = answer
        .strip_suffix("|0")
        .or_else(|| answer.strip_suffix("|1"))
        .unwrap_or(answer)
        .trim();
    Some(NewUser {
        id,
        username: name.clone(),
        password,
        nickname: truncate(&row.nickname, 64),
        avatar: truncate(&row.icon, 512),
        signature: truncate(&clean_signature(&row.signature), 512),
        vip: row.vip,
        gender: 0,
        email: None,
        phone: None,
        question_id: i32::try_from(row.question).unwrap_or(0),
        answer: (!answer.is_empty()).then(|| answer.to_owned()),
        ocid: None,
        created_at_ms: None,
    })
}

/// The update_profile bug stored `sig|<qid>|<answer>` as the signature: keep `sig` (as
/// `^(.*)\|\d\|(.*)$` with a greedy first group would) and drop the leaked answer.
fn clean_signature(signature: &str) -> String {
    let b = signature.as_bytes();
    (0..b.len().saturating_sub(2))
        .rev()
        .find(|&i| b[i] == b'|' && b[i + 1].is_ascii_digit() && b[i + 2] == b'|')
        .map_or_else(|| signature.to_owned(), |i| signature[..i].to_owned())
}

/// Parses the client-supplied time loosely (the Qt client's format is unknown); `None` when
/// nothing fits. Times are taken as UTC: the legacy strings carry no zone.
pub fn parse_time(text: &str) -> Option<i64> {
    use chrono::{NaiveDate, NaiveDateTime};
    let t = text.trim();
    if t.bytes().all(|b| b.is_ascii_digit()) {
        match t.len() {
            10 => return t.parse::<i64>().ok().map(|secs| secs * 1000),
            13 => return t.parse().ok(),
            _ => {}
        }
    }
    const FORMATS: [&str; 9] = [
        "%Y%m%d%H%M%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d-%H:%M:%S",
        "%Y-%m-%d_%H:%M:%S",
        "%Y-%m-%d%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d-%H:%M:%S",
        "%Y.%m.%d %H:%M:%S",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|t| t.and_utc().timestamp_millis())
}

/// Builds every conversation's messages; queue rows that repeat a history row mark that row
/// unread for their recipient instead of adding a copy.
fn plan_messages(
    legacy: &Legacy,
    known: &BTreeSet<i64>,
    groups: &BTreeMap<i64, Vec<i64>>,
    now: i64,
    s: &mut Summary,
) -> BTreeMap<Target, Vec<NewMessage>> {
    let mut out: BTreeMap<Target, Vec<NewMessage>> = BTreeMap::new();
    // (target, sender, time, content) → (target, index) of the first such message.
    let mut index: HashMap<(Target, i64, String, String), usize> = HashMap::new();
    let mut occurrences: HashMap<String, u32> = HashMap::new();
    let mut order = 0usize;
    let mut add = |target: Target,
                   to_user: Option<i64>,
                   row: &MessageRow,
                   unread_for: Option<i64>,
                   source: &str,
                   s: &mut Summary| {
        order += 1;
        let lookup = (target, row.poster, row.time.clone(), row.content.clone());
        if source == "queue"
            && let Some(&i) = index.get(&lookup)
            && let Some(found) = out.get_mut(&target).and_then(|v| v.get_mut(i))
        {
            // The queue repeats a logged message: it is that message, unread for recv.
            if let Some(user) = unread_for {
                found.unread_for.insert(user);
            }
            s.skip(
                MESSAGES,
                "queued copy of a history row (merged: marks it unread)",
            );
            return;
        }
        let digest = Sha256::digest(
            format!(
                "{source}\x1f{target:?}\x1f{}\x1f{}\x1f{}",
                row.poster, row.time, row.content
            )
            .as_bytes(),
        );
        let base = format!("qtqq:{}", &hex::encode(digest)[..32]);
        let n = occurrences.entry(base.clone()).or_insert(0);
        *n += 1;
        let sent_at_ms = parse_time(&row.time).unwrap_or_else(|| {
            s.note("message time unparseable: sent_at = import time, text kept as client_time");
            now
        });
        let list = out.entry(target).or_default();
        index.entry(lookup).or_insert(list.len());
        list.push(NewMessage {
            client_message_id: format!("{base}:{n}"),
            sender: row.poster,
            to_user,
            client_time: truncate(&row.time, 64),
            sent_at_ms,
            text: row.content.clone(),
            unread_for: unread_for.into_iter().collect(),
            order,
        });
    };

    for row in &legacy.private_history {
        s.read(MESSAGES);
        let Some(&(a, b)) = legacy.chat_infos.get(&row.conv) else {
            s.skip(MESSAGES, "private message without its single_chat_info row");
            continue;
        };
        let to = if row.poster == a {
            b
        } else if row.poster == b {
            a
        } else {
            s.skip(MESSAGES, "poster is not in the conversation");
            continue;
        };
        if let Some(reason) = check(row, to, known) {
            s.skip(MESSAGES, reason);
            continue;
        }
        add(
            Target::pair(row.poster, to),
            Some(to),
            row,
            None,
            "private",
            s,
        );
    }
    for row in &legacy.group_history {
        s.read(MESSAGES);
        if !groups.contains_key(&row.conv) {
            s.skip(MESSAGES, "group message to a group that was not imported");
            continue;
        }
        if let Some(reason) = check(row, row.poster, known) {
            s.skip(MESSAGES, reason);
            continue;
        }
        add(Target::Group(row.conv), None, row, None, "group", s);
    }
    for row in &legacy.queue {
        s.read(MESSAGES);
        if let Some(reason) = check(row, row.recv, known) {
            s.skip(MESSAGES, reason);
            continue;
        }
        if row.conv == 0 {
            if row.poster == row.recv {
                s.skip(MESSAGES, "message to oneself");
                continue;
            }
            let target = Target::pair(row.poster, row.recv);
            add(target, Some(row.recv), row, Some(row.recv), "queue", s);
        } else {
            let Some(members) = groups.get(&row.conv) else {
                s.skip(MESSAGES, "group message to a group that was not imported");
                continue;
            };
            let unread = members.contains(&row.recv).then_some(row.recv);
            add(Target::Group(row.conv), None, row, unread, "queue", s);
        }
    }
    out
}

/// Why a message cannot be imported, if it cannot.
fn check(row: &MessageRow, other: i64, known: &BTreeSet<i64>) -> Option<&'static str> {
    if !known.contains(&row.poster) || !known.contains(&other) {
        Some("names a user that was not imported")
    } else if row.content.is_empty() {
        Some("empty content")
    } else if row.content.len() > 16 * 1024 {
        Some("text over 16 KiB")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_loses_the_leaked_answer() {
        assert_eq!(clean_signature("hello|2|myanswer"), "hello");
        assert_eq!(clean_signature("a|b|3|x|y"), "a|b");
        assert_eq!(clean_signature("plain"), "plain");
        assert_eq!(clean_signature("|1|"), "");
    }

    #[test]
    fn times_parse_loosely() {
        assert_eq!(parse_time("19700101000001"), Some(1000));
        assert_eq!(parse_time("1970-01-01-00:00:02"), Some(2000));
        assert_eq!(parse_time("1567500000"), Some(1_567_500_000_000));
        assert_eq!(parse_time("12:30:00"), None);
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn request_note_default_is_empty() {
        assert_eq!(note("\"\""), "");
        assert_eq!(note("hi"), "hi");
    }
}
