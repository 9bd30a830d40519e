//! OurChat (SkyUOI/OurChat at 06cff08e, MySQL `OurChat`, utf8mb4): section 5 of
//! `shared/legacy-schemas.md`.
//!
//! Users: the snowflake `user.id` (beyond 2^53, internal, never shown to users) is NOT kept:
//! Rosetta gives each user a fresh id after the target's highest (explicit snowflakes would
//! also drag the id sequence past 2^62). The user-visible `ocid` is kept as the Rosetta ocid,
//! and a rerun finds its users by ocid, so the import stays idempotent. Login names: the
//! OurChat bridge logs in by ocid or e-mail, never by name, and the account service names an
//! account registered without one after its ocid; imported accounts get the same (the ocid as
//! username, or `ourchat_<ocid>` when another account already uses that name). `passwd` (the
//! SHA-256 hex the client sent) becomes the `SHA256_HEX` argon2id verifier; `name` the
//! nickname; `email` the (unverified) e-mail when it is one and free; the client-supplied
//! `time` (seconds or milliseconds) the creation time, checked against the snowflake's own
//! timestamp.
//!
//! No code at that commit writes the other tables; a later build's rows are imported when
//! present: `friend` rows become friendships (the alias has no place in Rosetta: noted),
//! `chatgroup` + `chat` groups with their members (per-member nicknames and labels noted,
//! not kept), and `user_chat_id` messages addressed through their `user_chat_msg` inbox link.
//! Rows the broken one-column keys let repeat (or a build that dropped those keys) are deduped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rosetta_db::entity::{social::group, user};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QuerySelect as _,
};
use sqlx::{Row as _, mysql::MySqlRow};

use crate::{
    Options, Summary,
    legacy::{self, rows, truncate, valid_email},
    write::{self, NewMessage, NewUser, Password, Target},
};

const USERS: &str = "users";
const GROUPS: &str = "groups";
const MEMBERS: &str = "group members";
const MESSAGES: &str = "messages";

/// The snowflake epoch of OurChat's ids (Twitter's), in Unix milliseconds.
pub const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;
/// Ids up to this survive JSON numbers read as doubles; larger legacy group ids get fresh ones.
const JSON_SAFE: u64 = (1 << 53) - 1;
/// A client clock may be this far from the server's and the registration time still trusted.
const CLOCK_SLACK_MS: i64 = 24 * 3600 * 1000;
/// Creation times before this (2015-01-01) are not OurChat's (a 2023 project).
const EARLIEST_MS: i64 = 1_420_070_400_000;

/// Imports the OurChat database at `from` into `target`.
pub async fn import(
    from: &str,
    target: &DatabaseConnection,
    options: &Options,
) -> anyhow::Result<Summary> {
    let pool = legacy::connect(from, "OurChat").await?;
    let mut s = Summary::new(options.dry_run);
    if options.files_dir.is_some() {
        s.note("--files-dir ignored: OurChat stored no files");
    }
    let legacy = Legacy::read(&pool, &mut s).await?;
    pool.close().await;
    let now = rosetta_db::now_ms();

    // Users: legacy snowflake → Rosetta id.
    let mut known: HashMap<u64, i64> = HashMap::new();
    // Legacy ids of the users to create, in the order of `new_users`.
    let mut pending: Vec<u64> = Vec::new();
    let mut new_users: Vec<NewUser> = Vec::new();
    let mut ocids: BTreeSet<String> = BTreeSet::new();
    let mut emails: BTreeSet<String> = BTreeSet::new();
    for row in &legacy.users {
        s.read(USERS);
        let Some(mut u) = plan_user(row, now, &mut s) else {
            continue;
        };
        let ocid = u.ocid.clone().unwrap_or_default();
        if !ocids.insert(ocid.clone()) {
            s.skip(USERS, "same ocid as an earlier row");
            continue;
        }
        if let Some(existing) = user::Entity::find()
            .filter(user::Column::Ocid.eq(&ocid))
            .one(target)
            .await?
        {
            // Ours when it still carries what the import gave it (names can change later,
            // the creation time cannot).
            if Some(existing.created_at_ms) == u.created_at_ms
                || existing.username == ocid
                || existing.username == fallback_username(&ocid)
            {
                s.already(USERS, 1);
                known.insert(row.id, existing.id);
            } else {
                s.skip(USERS, "ocid already used by another Rosetta account");
            }
            continue;
        }
        if write::user_with(target, user::Column::Username, &u.username).await? {
            let other = fallback_username(&ocid);
            if write::user_with(target, user::Column::Username, &other).await? {
                s.skip(
                    USERS,
                    "user names <ocid> and ourchat_<ocid> both used by other Rosetta accounts",
                );
                continue;
            }
            s.note("user name <ocid> used by another Rosetta account: named ourchat_<ocid>");
            u.username = other;
        }
        if let Some(email) = u.email.take() {
            if !emails.insert(email.clone()) {
                s.note("e-mail shared with an earlier row (ignoring case): left empty");
            } else if write::user_with(target, user::Column::Email, &email).await? {
                s.note("e-mail already used by another Rosetta account: left empty");
            } else {
                u.email = Some(email);
            }
        }
        pending.push(row.id);
        new_users.push(u);
    }
    let ids = write::fresh_ids(target, "users", new_users.len(), options.dry_run).await?;
    for ((u, id), legacy_id) in new_users.iter_mut().zip(ids).zip(pending) {
        u.id = id;
        known.insert(legacy_id, id);
    }
    let tx = write::create_users(target, &new_users, options.dry_run, &mut s, USERS).await?;

    // Friendships: one row per direction or per (user, friend) at best; pairs merged.
    let mut friendships = write::Friendships::default();
    for row in &legacy.friends {
        if !row.alias.trim().is_empty() {
            s.note("friend alias (friend.name) not imported: Rosetta friendships carry none");
        }
        let (a, b) = (known.get(&row.user), known.get(&row.friend));
        friendships.add(&mut s, a.copied(), b.copied(), now);
    }
    friendships.write(&tx, &mut s).await?;

    // Groups: `chatgroup` names them, `chat` rows are their members.
    let mut members_of: BTreeMap<u64, Vec<(u64, i64)>> = BTreeMap::new();
    let named: BTreeMap<u64, &str> = legacy
        .groups
        .iter()
        .map(|(id, name)| (*id, name.as_str()))
        .collect();
    for row in &legacy.members {
        s.read(MEMBERS);
        if !named.contains_key(&row.group) {
            s.skip(MEMBERS, "names a group without a chatgroup row");
            continue;
        }
        let Some(&user) = known.get(&row.user) else {
            s.skip(MEMBERS, "names a user that was not imported");
            continue;
        };
        let list = members_of.entry(row.group).or_default();
        if list.iter().any(|(_, u)| *u == user) {
            s.skip(MEMBERS, "duplicate (group, member) row");
            continue;
        }
        if !row.nickname.trim().is_empty() || !row.label.trim().is_empty() {
            s.note("per-member group nickname or label (chat.name, chat.group_name) not imported");
        }
        list.push((row.user, user));
    }
    let mut seen_groups = BTreeSet::new();
    for (legacy_gid, name) in &legacy.groups {
        s.read(GROUPS);
        if !seen_groups.insert(*legacy_gid) {
            s.skip(GROUPS, "same group id again");
            continue;
        }
        let Some(mut members) = members_of.remove(legacy_gid) else {
            s.skip(GROUPS, "no imported member");
            continue;
        };
        // No owner column: the earliest-registered member (lowest snowflake) owns it.
        members.sort_unstable();
        let owner = members[0].1;
        let name = match truncate(name.trim(), 64) {
            n if n.is_empty() => legacy_gid.to_string(),
            n => n,
        };
        let gid = match group_id(&tx, *legacy_gid, &name, owner, options.dry_run, &mut s).await? {
            GroupId::Existing(gid) => {
                s.already(GROUPS, 1);
                gid
            }
            GroupId::New(gid, created_at_ms) => {
                write::insert_group(&tx, gid, &name, owner, created_at_ms).await?;
                s.imported(GROUPS, 1);
                gid
            }
            GroupId::Taken => {
                s.skip(GROUPS, "id already used by another Rosetta group");
                s.skip_n(MEMBERS, members.len(), "their group was not imported");
                continue;
            }
        };
        for &(_, member) in &members {
            let role = if member == owner {
                write::ROLE_OWNER
            } else {
                write::ROLE_MEMBER
            };
            if write::ensure_member(&tx, gid, member, role, now).await? {
                s.imported(MEMBERS, 1);
            } else {
                s.already(MEMBERS, 1);
            }
        }
    }

    // Messages: private, to the user whose inbox links them.
    let conversations = plan_messages(&legacy, &known, now, &mut s);
    write::import_private(&tx, conversations, &mut s, MESSAGES).await?;

    write::finish(tx, options.dry_run).await?;
    Ok(s)
}

/// Counting several rows skipped for one reason.
trait SkipN {
    fn skip_n(&mut self, kind: &'static str, n: usize, reason: &str);
}

impl SkipN for Summary {
    fn skip_n(&mut self, kind: &'static str, n: usize, reason: &str) {
        for _ in 0..n {
            self.skip(kind, reason);
        }
    }
}

/// One `user` row, as text: the unsigned columns may exceed `i64`.
struct UserRow {
    id: u64,
    ocid: String,
    passwd: String,
    name: String,
    email: String,
    time: Option<u64>,
}

struct FriendRow {
    user: u64,
    friend: u64,
    alias: String,
}

struct MemberRow {
    group: u64,
    user: u64,
    nickname: String,
    label: String,
}

struct MessageRow {
    id: u64,
    kind: Option<u64>,
    data: String,
    sender: u64,
}

/// Everything read from the legacy database.
#[derive(Default)]
struct Legacy {
    users: Vec<UserRow>,
    friends: Vec<FriendRow>,
    groups: Vec<(u64, String)>,
    members: Vec<MemberRow>,
    /// `user_chat_msg`: (user, message).
    inbox: Vec<(u64, u64)>,
    messages: Vec<MessageRow>,
}

impl Legacy {
    async fn read(pool: &sqlx::MySqlPool, s: &mut Summary) -> anyhow::Result<Self> {
        let mut l = Legacy::default();
        for r in rows(
            pool,
            "user",
            "SELECT CAST(id AS CHAR), CAST(ocid AS BINARY), CAST(passwd AS BINARY), \
             CAST(name AS BINARY), CAST(email AS BINARY), CAST(`time` AS CHAR) \
             FROM `user` ORDER BY id",
            s,
        )
        .await?
        {
            let Some(id) = unsigned(&r, 0)? else {
                s.read(USERS);
                s.skip(USERS, "id not a number");
                continue;
            };
            l.users.push(UserRow {
                id,
                ocid: utf8(&r, 1, s)?,
                passwd: utf8(&r, 2, s)?,
                name: utf8(&r, 3, s)?,
                email: utf8(&r, 4, s)?,
                time: unsigned(&r, 5)?,
            });
        }
        for r in rows(
            pool,
            "friend",
            "SELECT CAST(user_id AS CHAR), CAST(friend_id AS CHAR), CAST(name AS BINARY) \
             FROM friend",
            s,
        )
        .await?
        {
            l.friends.push(FriendRow {
                user: unsigned(&r, 0)?.unwrap_or(0),
                friend: unsigned(&r, 1)?.unwrap_or(0),
                alias: utf8(&r, 2, s)?,
            });
        }
        for r in rows(
            pool,
            "chatgroup",
            "SELECT CAST(group_id AS CHAR), CAST(group_name AS BINARY) FROM chatgroup \
             ORDER BY group_id",
            s,
        )
        .await?
        {
            l.groups
                .push((unsigned(&r, 0)?.unwrap_or(0), utf8(&r, 1, s)?));
        }
        for r in rows(
            pool,
            "chat",
            "SELECT CAST(group_id AS CHAR), CAST(user_id AS CHAR), CAST(name AS BINARY), \
             CAST(group_name AS BINARY) FROM chat",
            s,
        )
        .await?
        {
            l.members.push(MemberRow {
                group: unsigned(&r, 0)?.unwrap_or(0),
                user: unsigned(&r, 1)?.unwrap_or(0),
                nickname: utf8(&r, 2, s)?,
                label: utf8(&r, 3, s)?,
            });
        }
        for r in rows(
            pool,
            "user_chat_msg",
            "SELECT CAST(user_id AS CHAR), CAST(chat_msg_id AS CHAR) FROM user_chat_msg",
            s,
        )
        .await?
        {
            l.inbox
                .push((unsigned(&r, 0)?.unwrap_or(0), unsigned(&r, 1)?.unwrap_or(0)));
        }
        for r in rows(
            pool,
            "user_chat_id",
            "SELECT CAST(chat_msg_id AS CHAR), CAST(msg_type AS CHAR), CAST(msg_data AS BINARY), \
             CAST(sender_id AS CHAR) FROM user_chat_id ORDER BY chat_msg_id",
            s,
        )
        .await?
        {
            l.messages.push(MessageRow {
                id: unsigned(&r, 0)?.unwrap_or(0),
                kind: unsigned(&r, 1)?,
                data: utf8(&r, 2, s)?,
                sender: unsigned(&r, 3)?.unwrap_or(0),
            });
        }
        Ok(l)
    }
}

/// An unsigned column read as text (BIGINT UNSIGNED may not fit `i64`); `None` when NULL or
/// not a number.
fn unsigned(r: &MySqlRow, i: usize) -> anyhow::Result<Option<u64>> {
    let text: Option<String> = r.try_get(i)?;
    Ok(text.and_then(|t| t.trim().parse().ok()))
}

/// A column's bytes as text: the tables are utf8mb4, so invalid UTF-8 is damage, noted.
fn utf8(r: &MySqlRow, i: usize, s: &mut Summary) -> anyhow::Result<String> {
    let bytes: Option<Vec<u8>> = r.try_get(i)?;
    Ok(match bytes.map(String::from_utf8) {
        None => String::new(),
        Some(Ok(text)) => text,
        Some(Err(err)) => {
            s.note("text not valid UTF-8: invalid bytes replaced");
            String::from_utf8_lossy(err.as_bytes()).into_owned()
        }
    })
}

/// The Unix-ms timestamp embedded in a snowflake id (its top 41 bits).
pub fn snowflake_ms(id: u64) -> i64 {
    i64::try_from(id >> 22).unwrap_or(i64::MAX - SNOWFLAKE_EPOCH_MS) + SNOWFLAKE_EPOCH_MS
}

/// The client-supplied registration time in Unix ms: values below 10^11 are seconds (that is
/// up to the year 5138), larger ones milliseconds.
pub fn client_time_ms(time: u64) -> Option<i64> {
    let time = i64::try_from(time).ok()?;
    if time < 100_000_000_000 {
        Some(time * 1000)
    } else {
        Some(time)
    }
}

/// The creation time to keep: the client's `time` when it agrees with the snowflake's (within
/// a day of client clock skew), else the snowflake's when that one is plausible, else the
/// client's when only it is; `None` (import time) when neither is. Notes what it distrusted.
pub fn created_at(id: u64, time: Option<u64>, now: i64, s: &mut Summary) -> Option<i64> {
    let plausible = |t: &i64| (EARLIEST_MS..=now + CLOCK_SLACK_MS).contains(t);
    let server = Some(snowflake_ms(id)).filter(plausible);
    let client = time.and_then(client_time_ms).filter(plausible);
    match (client, server) {
        (Some(c), Some(srv)) if (c - srv).abs() <= CLOCK_SLACK_MS => Some(c),
        (Some(_), Some(srv)) => {
            s.note(
                "registration time over a day off the snowflake id's timestamp: \
                 the snowflake's used",
            );
            Some(srv)
        }
        (None, Some(srv)) => {
            s.note("registration time missing or implausible: the snowflake id's timestamp used");
            Some(srv)
        }
        (Some(c), None) => {
            s.note("id carries no plausible snowflake timestamp: the registration time used");
            Some(c)
        }
        (None, None) => {
            s.note(
                "neither the registration time nor the id is a plausible date: import time used",
            );
            None
        }
    }
}

fn fallback_username(ocid: &str) -> String {
    format!("ourchat_{ocid}")
}

/// The user to create (id still 0: allocated once every row is planned), or `None` with the
/// reason counted.
fn plan_user(row: &UserRow, now: i64, s: &mut Summary) -> Option<NewUser> {
    if row.id == 0 {
        s.skip(USERS, "id zero");
        return None;
    }
    let ocid = row.ocid.trim();
    if ocid.is_empty()
        || ocid.chars().count() > 10
        || ocid
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '|')
    {
        s.skip(
            USERS,
            "ocid empty, over 10 characters, or with spaces or '|'",
        );
        return None;
    }
    if ocid == rosetta_proto::system::OCID {
        s.skip(USERS, "ocid reserved for the system's announcements");
        return None;
    }
    if ocid.len() != 10 || !ocid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        s.note("ocid not 10 letters and digits (hand-made row): kept as it is");
    }
    let passwd = row.passwd.trim();
    if passwd.len() != 64 || !passwd.bytes().all(|b| b.is_ascii_hexdigit()) {
        s.skip(
            USERS,
            "passwd not 64 hex characters (the client's SHA-256 hex)",
        );
        return None;
    }
    let nickname = match truncate(row.name.trim(), 64) {
        n if n.is_empty() => {
            s.note("empty name: nickname = ocid");
            ocid.to_owned()
        }
        n => n,
    };
    let email = match row.email.trim() {
        "" => None,
        text => valid_email(text).or_else(|| {
            s.note("e-mail not an address: left empty");
            None
        }),
    };
    Some(NewUser {
        id: 0,
        username: ocid.to_owned(),
        password: Password::Sha256Hex(passwd.to_ascii_lowercase()),
        nickname,
        avatar: String::new(),
        signature: String::new(),
        vip: false,
        gender: 0,
        email,
        phone: None,
        question_id: 0,
        answer: None,
        ocid: Some(ocid.to_owned()),
        created_at_ms: created_at(row.id, row.time, now, s),
    })
}

enum GroupId {
    /// Imported earlier.
    Existing(i64),
    /// To create with this id and creation time.
    New(i64, i64),
    /// The legacy id is another group's.
    Taken,
}

/// Where a legacy group goes. Ids up to 2^53 are kept (clients name groups by id, like QtQQ's);
/// larger ones (snowflakes) get a fresh id, and the snowflake's timestamp as creation time
/// marks the group so that a rerun finds it by (owner, name, creation time).
async fn group_id<C: ConnectionTrait>(
    db: &C,
    legacy: u64,
    name: &str,
    owner: i64,
    dry_run: bool,
    s: &mut Summary,
) -> anyhow::Result<GroupId> {
    let now = rosetta_db::now_ms();
    if (1..=JSON_SAFE).contains(&legacy) {
        let gid = i64::try_from(legacy)?;
        return Ok(match write::find_group(db, gid).await? {
            Some(existing) if existing.owner_id == owner => GroupId::Existing(gid),
            Some(_) => GroupId::Taken,
            None => GroupId::New(gid, now),
        });
    }
    let marker = snowflake_ms(legacy);
    if let Some(found) = group::Entity::find()
        .filter(group::Column::OwnerId.eq(owner))
        .filter(group::Column::Name.eq(name))
        .filter(group::Column::CreatedAtMs.eq(marker))
        .select_only()
        .column(group::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?
    {
        return Ok(GroupId::Existing(found));
    }
    s.note("group id 0 or beyond 2^53 (a snowflake): the group gets a fresh id");
    let gid = write::fresh_ids(db, "groups", 1, dry_run).await?[0];
    Ok(GroupId::New(gid, marker))
}

/// Private messages, grouped by conversation. The only record of a message's recipient is
/// its `user_chat_msg` inbox link; a message still linked was never fetched by its
/// recipient, so it is unread for them. Messages carry no time: they take the import time,
/// in `chat_msg_id` order.
fn plan_messages(
    legacy: &Legacy,
    known: &HashMap<u64, i64>,
    now: i64,
    s: &mut Summary,
) -> BTreeMap<Target, Vec<NewMessage>> {
    let mut recipients: HashMap<u64, BTreeSet<u64>> = HashMap::new();
    let ids: BTreeSet<u64> = legacy.messages.iter().map(|m| m.id).collect();
    for &(user, msg) in &legacy.inbox {
        if !ids.contains(&msg) {
            s.note("inbox link (user_chat_msg) to a message that does not exist: ignored");
            continue;
        }
        if !recipients.entry(msg).or_default().insert(user) {
            s.note("duplicate inbox link (user_chat_msg): merged");
        }
    }
    let mut out: BTreeMap<Target, Vec<NewMessage>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut any_text = false;
    for (order, m) in legacy.messages.iter().enumerate() {
        s.read(MESSAGES);
        if !seen.insert(m.id) {
            s.skip(MESSAGES, "same chat_msg_id again");
            continue;
        }
        let Some(&sender) = known.get(&m.sender) else {
            s.skip(MESSAGES, "sender was not imported");
            continue;
        };
        let to: Vec<u64> = recipients
            .get(&m.id)
            .map(|r| r.iter().copied().filter(|u| *u != m.sender).collect())
            .unwrap_or_default();
        let to = match to.as_slice() {
            [] if recipients.contains_key(&m.id) => {
                s.skip(MESSAGES, "message to oneself");
                continue;
            }
            [] => {
                s.skip(MESSAGES, "no inbox link (user_chat_msg): recipient unknown");
                continue;
            }
            [one] => *one,
            _ => {
                s.skip(MESSAGES, "linked to several inboxes: no group recorded");
                continue;
            }
        };
        let Some(&recipient) = known.get(&to) else {
            s.skip(MESSAGES, "recipient was not imported");
            continue;
        };
        match m.kind {
            Some(0) => {}
            Some(kind) => {
                s.skip(
                    MESSAGES,
                    format!("msg_type {kind} is not text (no file data stored)"),
                );
                continue;
            }
            None => {
                s.skip(MESSAGES, "msg_type not a number");
                continue;
            }
        }
        if m.data.trim().is_empty() {
            s.skip(MESSAGES, "empty message");
            continue;
        }
        if m.data.len() > 16 * 1024 {
            s.skip(MESSAGES, "text over 16 KiB");
            continue;
        }
        any_text = true;
        out.entry(Target::pair(sender, recipient))
            .or_default()
            .push(NewMessage {
                client_message_id: format!("ourchat:m{}", m.id),
                sender,
                to_user: Some(recipient),
                client_time: String::new(),
                sent_at_ms: now,
                text: m.data.clone(),
                unread_for: BTreeSet::from([recipient]),
                order,
            });
    }
    if any_text {
        s.note("OurChat messages carry no time: sent at the import time, in chat_msg_id order");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn snowflake(ms: i64) -> u64 {
        (((ms - SNOWFLAKE_EPOCH_MS) as u64) << 22) | (1 << 12) | 7
    }

    #[test]
    fn snowflakes_carry_their_time() {
        let t = 1_722_441_600_000;
        assert_eq!(snowflake_ms(snowflake(t)), t);
        assert!(snowflake(t) > 1 << 53);
    }

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        assert_eq!(client_time_ms(1_722_441_600), Some(1_722_441_600_000));
        assert_eq!(client_time_ms(1_722_441_600_123), Some(1_722_441_600_123));
        assert_eq!(client_time_ms(u64::MAX), None);
    }

    #[test]
    fn creation_time_is_checked_against_the_snowflake() {
        let mut s = Summary::new(false);
        let t = 1_722_441_600_000;
        let id = snowflake(t);
        assert_eq!(
            created_at(id, Some(1_722_441_630), NOW, &mut s),
            Some(t + 30_000)
        );
        assert!(s.notes.is_empty());
        assert_eq!(created_at(id, Some(114_514), NOW, &mut s), Some(t));
        assert_eq!(created_at(id, Some(1_600_000_000), NOW, &mut s), Some(t));
        assert_eq!(created_at(42, Some(1_722_441_600), NOW, &mut s), Some(t));
        assert_eq!(created_at(42, None, NOW, &mut s), None);
        assert_eq!(s.notes.len(), 4, "{:?}", s.notes);
    }
}
