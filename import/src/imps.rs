//! SysOfIMPS (liwenhaosuper/SysOfIMPS, `impsdev`, the `dump.sql` shape the server code
//! matches): section 2 of `shared/legacy-schemas.md`. Users, friends and messages; the web
//! SNS tables, `position` and attachments are not imported.
//!
//! Mapping: `user.userid` is kept as the Rosetta user id; user 1 (`IMPSAssistor`, the bot the
//! dump seeds) is skipped, and so is every `friend` row naming it (the `add_assistor` trigger
//! made one for every user). Plaintext passwords become verifiers for every password form, as
//! Register makes them, and are dropped. Gender 'M' → male, 'F' → female, '' → unknown. The
//! e-mail is kept (unverified) when it looks like one and no other account has it. Friend rows
//! (one per pair, either order) become friendships since `friend.time`; messages are read
//! (`sent` carries no meaning), keyed by `m_id` for idempotency.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rosetta_db::entity::user;
use sea_orm::DatabaseConnection;

use crate::{
    Options, Summary,
    legacy::{self, int, rows, text, truncate, valid_email},
    write::{self, FRIENDSHIPS, NewMessage, NewUser, Password, Target},
};

const USERS: &str = "users";
const MESSAGES: &str = "messages";

/// The assistant bot's legacy id.
const ASSISTOR: i64 = 1;

/// Imports the SysOfIMPS database at `from` into `target`.
pub async fn import(
    from: &str,
    target: &DatabaseConnection,
    options: &Options,
) -> anyhow::Result<Summary> {
    let pool = legacy::connect(from, "SysOfIMPS").await?;
    let mut s = Summary::new(options.dry_run);
    if options.files_dir.is_some() {
        s.note("--files-dir ignored: SNS attachments are not imported yet");
    }
    let now = rosetta_db::now_ms();

    // Users.
    let user_rows = rows(
        &pool,
        "user",
        "SELECT CAST(userid AS SIGNED), CAST(username AS BINARY), CAST(password AS BINARY), \
         CAST(email AS BINARY), CAST(gender AS BINARY) FROM `user` ORDER BY userid",
        &mut s,
    )
    .await?;
    let mut known = BTreeSet::new();
    let mut new_users = Vec::new();
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut emails: BTreeSet<String> = BTreeSet::new();
    for r in &user_rows {
        s.read(USERS);
        let id = int(r, 0)?.unwrap_or(0);
        let name = text(r, 1, &mut s)?;
        if id == ASSISTOR || name.eq_ignore_ascii_case("IMPSAssistor") {
            s.skip(USERS, "the IMPSAssistor bot (user 1)");
            continue;
        }
        if id <= 0 {
            s.skip(USERS, "uid not positive");
            continue;
        }
        let name_ok = (1..=64).contains(&name.chars().count())
            && !name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '|');
        if !name_ok {
            s.skip(USERS, "user name empty, too long, or with spaces or '|'");
            continue;
        }
        // Names were unique only case-insensitively in code, and not at all in the schema.
        let username = match names.get(&name.to_lowercase()) {
            Some(_) => {
                s.note("user name taken by an earlier uid (ignoring case): renamed <name>_<uid>");
                format!("{name}_{id}")
            }
            None => name.clone(),
        };
        names.insert(name.to_lowercase(), id);
        let password = text(r, 2, &mut s)?;
        if password.is_empty() {
            s.skip(USERS, "empty password");
            continue;
        }
        let gender = match text(r, 4, &mut s)?.as_str() {
            "M" => 1,
            "F" => 2,
            _ => 0,
        };
        let email = valid_email(&text(r, 3, &mut s)?);
        let email = match email {
            Some(e) if emails.insert(e.clone()) => Some(e),
            Some(_) => {
                s.note("e-mail shared with an earlier uid: left empty");
                None
            }
            None => None,
        };
        match write::slot(target, id, &username).await? {
            write::Slot::Already => {
                s.already(USERS, 1);
                known.insert(id);
                continue;
            }
            write::Slot::Taken(why) => {
                s.skip(USERS, why);
                continue;
            }
            write::Slot::Free => {}
        }
        let email = match email {
            Some(e) if write::user_with(target, user::Column::Email, &e).await? => {
                s.note("e-mail already used by another Rosetta account: left empty");
                None
            }
            other => other,
        };
        known.insert(id);
        new_users.push(NewUser {
            id,
            username,
            password: Password::Plain(password),
            nickname: truncate(&name, 64),
            avatar: String::new(),
            signature: String::new(),
            vip: false,
            gender,
            email,
            phone: None,
            question_id: 0,
            answer: None,
            ocid: None,
            created_at_ms: None,
        });
    }

    let friend_rows = rows(
        &pool,
        "friend",
        "SELECT CAST(userid AS SIGNED), CAST(use_userid AS SIGNED), \
         CAST(UNIX_TIMESTAMP(`time`) AS SIGNED) FROM friend",
        &mut s,
    )
    .await?;
    let message_rows = rows(
        &pool,
        "message",
        "SELECT CAST(m_id AS SIGNED), CAST(userid AS SIGNED), CAST(use_userid AS SIGNED), \
         CAST(UNIX_TIMESTAMP(m_time) AS SIGNED), CAST(m_time AS CHAR), \
         CAST(message AS BINARY) FROM message ORDER BY m_id",
        &mut s,
    )
    .await?;
    pool.close().await;

    let tx = write::create_users(target, &new_users, options.dry_run, &mut s, USERS).await?;

    // Friendships: one row per pair in either order; the trigger's rows with user 1 dropped.
    let mut friendships = write::Friendships::default();
    let imported = |id: i64| known.contains(&id).then_some(id);
    for r in &friend_rows {
        let (a, b) = (int(r, 0)?.unwrap_or(0), int(r, 1)?.unwrap_or(0));
        let since = int(r, 2)?.filter(|t| *t > 0).map_or(now, |t| t * 1000);
        if a == ASSISTOR || b == ASSISTOR {
            s.read(FRIENDSHIPS);
            s.skip(FRIENDSHIPS, "the IMPSAssistor trigger's row");
        } else {
            friendships.add(&mut s, imported(a), imported(b), since);
        }
    }
    friendships.write(&tx, &mut s).await?;

    // Messages: all read.
    let mut conversations: BTreeMap<Target, Vec<NewMessage>> = BTreeMap::new();
    for (order, r) in message_rows.iter().enumerate() {
        s.read(MESSAGES);
        let m_id = int(r, 0)?.unwrap_or(0);
        let (sender, to) = (int(r, 1)?.unwrap_or(0), int(r, 2)?.unwrap_or(0));
        let body = text(r, 5, &mut s)?;
        if sender == ASSISTOR || to == ASSISTOR {
            s.skip(MESSAGES, "to or from the IMPSAssistor bot");
        } else if !known.contains(&sender) || !known.contains(&to) {
            s.skip(MESSAGES, "names a user that was not imported");
        } else if sender == to {
            s.skip(MESSAGES, "message to oneself");
        } else if body.is_empty() {
            s.skip(MESSAGES, "empty message");
        } else if body.len() > 16 * 1024 {
            s.skip(MESSAGES, "text over 16 KiB");
        } else {
            let sent_at_ms = int(r, 3)?.filter(|t| *t > 0).map_or_else(
                || {
                    s.note("message time zero or missing: sent_at = import time");
                    now
                },
                |t| t * 1000,
            );
            let client_time: Option<String> = sqlx::Row::try_get(r, 4)?;
            conversations
                .entry(Target::pair(sender, to))
                .or_default()
                .push(NewMessage {
                    client_message_id: format!("imps:m{m_id}"),
                    sender,
                    to_user: Some(to),
                    client_time: client_time.unwrap_or_default(),
                    sent_at_ms,
                    text: body,
                    unread_for: BTreeSet::new(),
                    order,
                });
        }
    }
    write::import_private(&tx, conversations, &mut s, MESSAGES).await?;

    write::finish(tx, options.dry_run).await?;
    Ok(s)
}
