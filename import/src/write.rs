//! Writing planned rows exactly as the services would have: users with their argon2id
//! verifiers, both rows of a friendship, pending requests, groups with their members, and
//! messages with their conversation seq, per-user event log entries and read marks.

use std::collections::{BTreeMap, BTreeSet, btree_map::Entry};

use anyhow::Context as _;
use argon2::{Algorithm, Argon2, Block, Version};
use rosetta_account::Scheme;
use rosetta_db::entity::{
    credential,
    messaging::{conversation, message, read_state},
    social::{friend_request, friendship, group, group_member, join_request},
    user,
};
use rosetta_messaging::log::Events;
use rosetta_proto::messaging::v1::{ConversationKind, Message, MessageKind, event::Kind};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, EntityTrait as _, QueryFilter as _, Statement, TransactionTrait as _,
    sea_query::OnConflict,
};

use crate::Summary;

/// `rosetta.social.v1.RequestState.PENDING`.
pub const PENDING: i16 = 1;
/// `rosetta.social.v1.GroupRole`.
pub const ROLE_MEMBER: i16 = 1;
pub const ROLE_ADMIN: i16 = 2;
pub const ROLE_OWNER: i16 = 3;

/// The form a legacy password is stored in.
#[derive(Debug, Clone)]
pub enum Password {
    /// The MD5 hex digest the client sends (lowercase).
    Md5Hex(String),
    /// The SHA-256 hex digest the client sends (lowercase).
    Sha256Hex(String),
    /// Plaintext (e.g. hand-written test rows): verifiers for every form, as Register makes.
    Plain(String),
}

/// A user to create with a preserved id.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: i64,
    pub username: String,
    pub password: Password,
    pub nickname: String,
    pub avatar: String,
    pub signature: String,
    pub vip: bool,
    /// `rosetta.account.v1.Gender`.
    pub gender: i16,
    /// Unverified, lowercase.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub question_id: i32,
    pub answer: Option<String>,
    /// The public handle to keep (OurChat's ocid); a fresh one is drawn when `None`.
    pub ocid: Option<String>,
    /// When the legacy system created the account, if it recorded it; else the import time.
    pub created_at_ms: Option<i64>,
}

/// A user's argon2id verifiers, computed before the write transaction.
#[derive(Debug, Clone, Default)]
pub struct Hashed {
    pub verifiers: Vec<(Scheme, String)>,
    pub answer: Option<String>,
}

/// argon2id with one reused 19 MiB work area: allocating it per hash (as the password-hash
/// API does) fragmented the heap to ~0.5–1 GB over a few hundred users.
pub struct Hasher {
    argon2: Argon2<'static>,
    blocks: Vec<Block>,
}

impl Default for Hasher {
    fn default() -> Self {
        // The account service's parameters: the PHC string carries them, so the service
        // verifies these verifiers like its own.
        let params = rosetta_account::argon2_params();
        let blocks = vec![Block::default(); params.block_count()];
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            blocks,
        }
    }
}

impl Hasher {
    /// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `secret` with a fresh salt.
    pub fn hash(&mut self, secret: &str) -> anyhow::Result<String> {
        use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
        use rand::Rng as _;
        let mut salt = [0u8; 16];
        rand::rng().fill(&mut salt);
        let mut out = [0u8; 32];
        self.argon2
            .hash_password_into_with_memory(secret.as_bytes(), &salt, &mut out, &mut self.blocks)
            .map_err(|err| anyhow::anyhow!("argon2: {err}"))?;
        let params = self.argon2.params();
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Verifiers as Register stores them for a password presented in that form.
    pub fn user(&mut self, user: &NewUser) -> anyhow::Result<Hashed> {
        let verifiers = match &user.password {
            Password::Md5Hex(hex) => vec![(Scheme::Md5Hex, self.hash(hex)?)],
            Password::Sha256Hex(hex) => vec![(Scheme::Sha256Hex, self.hash(hex)?)],
            Password::Plain(plain) => Scheme::ALL
                .iter()
                .map(|s| Ok((*s, self.hash(&s.derive(plain))?)))
                .collect::<anyhow::Result<_>>()?,
        };
        let answer = user.answer.as_deref().map(|a| self.hash(a)).transpose()?;
        Ok(Hashed { verifiers, answer })
    }
}

/// Hashes every user on a few dedicated threads (one per core). A fixed set of threads keeps
/// memory flat: each argon2id run takes 19 MiB, and hashing on the ever-changing blocking pool
/// left the allocator holding close to 1 GB for 200 users.
async fn hash_all(users: &[NewUser]) -> anyhow::Result<Vec<Hashed>> {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };
    let users = users.to_vec();
    tokio::task::spawn_blocking(move || {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<anyhow::Result<Hashed>>>> =
            Mutex::new((0..users.len()).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..workers.min(users.len().max(1)) {
                scope.spawn(|| {
                    let mut hasher = Hasher::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(user) = users.get(i) else { break };
                        let hashed = hasher.user(user);
                        results.lock().expect("results lock")[i] = Some(hashed);
                    }
                });
            }
        });
        results
            .into_inner()
            .expect("results lock")
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("user not hashed"))))
            .collect()
    })
    .await
    .context("hashing task")?
}

/// How many users are hashed and committed together: an interrupted import keeps every
/// finished batch, and the rerun finds those users already there and goes on from the next.
const USER_BATCH: usize = 256;

/// Creates `users` and opens the transaction the rest of the import writes in.
///
/// Hashing dominates an import (two argon2id runs per second per core and user form), so
/// users are hashed and committed in batches before anything else: a rerun after an
/// interruption resumes where it stopped instead of hashing everyone again. A dry run
/// hashes nothing and writes the users inside the returned transaction, which it rolls back.
pub async fn create_users(
    target: &DatabaseConnection,
    users: &[NewUser],
    dry_run: bool,
    s: &mut Summary,
    kind: &'static str,
) -> anyhow::Result<DatabaseTransaction> {
    let now = rosetta_db::now_ms();
    if dry_run {
        let tx = target.begin().await?;
        for u in users {
            insert_user(&tx, u, Hashed::default(), now).await?;
            s.imported(kind, 1);
        }
        return Ok(tx);
    }
    for batch in users.chunks(USER_BATCH) {
        let hashed = hash_all(batch).await?;
        let tx = target.begin().await?;
        for (u, h) in batch.iter().zip(hashed) {
            insert_user(&tx, u, h, now).await?;
        }
        bump_sequences(&tx).await?;
        tx.commit().await?;
        s.imported(kind, batch.len() as u64);
    }
    Ok(target.begin().await?)
}

async fn insert_user(
    tx: &DatabaseTransaction,
    u: &NewUser,
    hashed: Hashed,
    now: i64,
) -> anyhow::Result<()> {
    let ocid = match &u.ocid {
        Some(ocid) => ocid.clone(),
        None => fresh_ocid(tx).await?,
    };
    user::Entity::insert(user::ActiveModel {
        id: Set(u.id),
        username: Set(u.username.clone()),
        ocid: Set(ocid),
        email: Set(u.email.clone()),
        phone: Set(u.phone.clone()),
        nickname: Set(u.nickname.clone()),
        avatar: Set(u.avatar.clone()),
        signature: Set(u.signature.clone()),
        gender: Set(u.gender),
        vip: Set(u.vip),
        security_question_id: Set(u.question_id),
        security_answer_hash: Set(hashed.answer),
        created_at_ms: Set(u.created_at_ms.unwrap_or(now)),
        deleted_at_ms: Set(None),
    })
    .exec_without_returning(tx)
    .await
    .with_context(|| format!("insert user {}", u.id))?;
    for (scheme, verifier) in hashed.verifiers {
        credential::Entity::insert(credential::ActiveModel {
            user_id: Set(u.id),
            scheme: Set(scheme as i16),
            verifier: Set(verifier),
            created_at_ms: Set(now),
        })
        .exec_without_returning(tx)
        .await?;
    }
    Ok(())
}

/// Where a user that keeps its legacy id stands on the target (the ids rule in README).
pub enum Slot {
    /// An earlier import created it: same id, same name.
    Already,
    /// Neither the id nor the name is taken.
    Free,
    /// Another account holds the id or the name: never merged, skipped for this reason.
    Taken(&'static str),
}

pub async fn slot<C: ConnectionTrait>(db: &C, id: i64, username: &str) -> anyhow::Result<Slot> {
    // The system's identity, in which legacy clients receive announcements.
    if id == rosetta_proto::system::USER_ID
        || username.eq_ignore_ascii_case(rosetta_proto::system::NAME)
    {
        return Ok(Slot::Taken("id or user name reserved for the system"));
    }
    if let Some(existing) = user::Entity::find_by_id(id).one(db).await? {
        return Ok(if existing.username == username {
            Slot::Already
        } else {
            Slot::Taken("id already used by another Rosetta account")
        });
    }
    let name_taken = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .is_some();
    Ok(if name_taken {
        Slot::Taken("user name already used by another Rosetta account")
    } else {
        Slot::Free
    })
}

/// Whether another account already has this value in a unique column (e-mail, phone).
pub async fn user_with<C: ConnectionTrait>(
    db: &C,
    column: user::Column,
    value: &str,
) -> anyhow::Result<bool> {
    Ok(user::Entity::find()
        .filter(column.eq(value))
        .one(db)
        .await?
        .is_some())
}

/// Ends an import's transaction: rolled back on a dry run, else committed after the id
/// sequences are moved past the imported ids.
pub async fn finish(tx: DatabaseTransaction, dry_run: bool) -> anyhow::Result<()> {
    if dry_run {
        tx.rollback().await?;
    } else {
        bump_sequences(&tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A fresh 10-character ocid, as Register draws it.
async fn fresh_ocid<C: ConnectionTrait>(db: &C) -> anyhow::Result<String> {
    use rand::{Rng as _, distr::Alphanumeric};
    loop {
        let ocid: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(char::from)
            .collect();
        if ocid == rosetta_proto::system::OCID {
            continue;
        }
        if user::Entity::find()
            .filter(user::Column::Ocid.eq(&ocid))
            .one(db)
            .await?
            .is_none()
        {
            return Ok(ocid);
        }
    }
}

pub async fn are_friends<C: ConnectionTrait>(db: &C, a: i64, b: i64) -> anyhow::Result<bool> {
    Ok(friendship::Entity::find_by_id((a, b))
        .one(db)
        .await?
        .is_some())
}

/// The summary's name for friendship rows.
pub const FRIENDSHIPS: &str = "friendships";

/// Legacy friendship rows reduced to unordered pairs: the legacy tables keep one row per
/// direction, one per (user, friend), or both orders by accident. A row naming a user that was
/// not imported (`None`), a user befriending themself, or a pair already seen is skipped with
/// that reason; the first row of a pair gives its date.
#[derive(Default)]
pub struct Friendships(BTreeMap<(i64, i64), i64>);

impl Friendships {
    pub fn add(&mut self, s: &mut Summary, a: Option<i64>, b: Option<i64>, since_ms: i64) {
        s.read(FRIENDSHIPS);
        let (Some(a), Some(b)) = (a, b) else {
            s.skip(FRIENDSHIPS, "names a user that was not imported");
            return;
        };
        if a == b {
            s.skip(FRIENDSHIPS, "a user befriending themself");
            return;
        }
        match self.0.entry((a.min(b), a.max(b))) {
            Entry::Occupied(_) => s.skip(
                FRIENDSHIPS,
                "same pair again (other direction or duplicate row)",
            ),
            Entry::Vacant(pair) => {
                pair.insert(since_ms);
            }
        }
    }

    /// Writes both rows of each pair not there yet.
    pub async fn write(self, tx: &DatabaseTransaction, s: &mut Summary) -> anyhow::Result<()> {
        for ((a, b), since_ms) in self.0 {
            if ensure_friendship(tx, a, b, since_ms).await? {
                s.imported(FRIENDSHIPS, 1);
            } else {
                s.already(FRIENDSHIPS, 1);
            }
        }
        Ok(())
    }
}

/// Both rows of a friendship. Returns false when they were there already.
pub async fn ensure_friendship<C: ConnectionTrait>(
    db: &C,
    a: i64,
    b: i64,
    since_ms: i64,
) -> anyhow::Result<bool> {
    let mut added = false;
    for (user_id, friend_id) in [(a, b), (b, a)] {
        if !are_friends(db, user_id, friend_id).await? {
            friendship::Entity::insert(friendship::ActiveModel {
                user_id: Set(user_id),
                friend_id: Set(friend_id),
                since_ms: Set(since_ms),
            })
            .exec_without_returning(db)
            .await?;
            added = true;
        }
    }
    Ok(added)
}

pub async fn pending_friend_request<C: ConnectionTrait>(
    db: &C,
    from: i64,
    to: i64,
) -> anyhow::Result<bool> {
    Ok(friend_request::Entity::find()
        .filter(friend_request::Column::FromUserId.eq(from))
        .filter(friend_request::Column::ToUserId.eq(to))
        .filter(friend_request::Column::State.eq(PENDING))
        .one(db)
        .await?
        .is_some())
}

pub async fn insert_friend_request<C: ConnectionTrait>(
    db: &C,
    from: i64,
    to: i64,
    note: &str,
    now: i64,
) -> anyhow::Result<()> {
    friend_request::Entity::insert(friend_request::ActiveModel {
        from_user_id: Set(from),
        to_user_id: Set(to),
        note: Set(note.to_owned()),
        state: Set(PENDING),
        created_at_ms: Set(now),
        answered_at_ms: Set(None),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn find_group<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> anyhow::Result<Option<group::Model>> {
    Ok(group::Entity::find_by_id(id).one(db).await?)
}

pub async fn insert_group<C: ConnectionTrait>(
    db: &C,
    id: i64,
    name: &str,
    owner: i64,
    now: i64,
) -> anyhow::Result<()> {
    group::Entity::insert(group::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        owner_id: Set(owner),
        public: Set(false),
        slug: Set(None),
        created_at_ms: Set(now),
        dissolved_at_ms: Set(None),
        system: Set(false),
        created_by: Set(Some(owner)),
    })
    .exec_without_returning(db)
    .await
    .with_context(|| format!("insert group {id}"))?;
    Ok(())
}

/// Returns false when the member row was there already.
pub async fn ensure_member<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    user_id: i64,
    role: i16,
    now: i64,
) -> anyhow::Result<bool> {
    if group_member::Entity::find_by_id((group_id, user_id))
        .one(db)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    group_member::Entity::insert(group_member::ActiveModel {
        group_id: Set(group_id),
        user_id: Set(user_id),
        role: Set(role),
        joined_at_ms: Set(now),
        muted_until_ms: Set(0),
    })
    .exec_without_returning(db)
    .await?;
    Ok(true)
}

pub async fn pending_join_request<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    applicant: i64,
) -> anyhow::Result<bool> {
    Ok(join_request::Entity::find()
        .filter(join_request::Column::GroupId.eq(group_id))
        .filter(join_request::Column::ApplicantId.eq(applicant))
        .filter(join_request::Column::State.eq(PENDING))
        .one(db)
        .await?
        .is_some())
}

pub async fn insert_join_request<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    applicant: i64,
    note: &str,
    now: i64,
) -> anyhow::Result<()> {
    join_request::Entity::insert(join_request::ActiveModel {
        group_id: Set(group_id),
        applicant_id: Set(applicant),
        note: Set(note.to_owned()),
        state: Set(PENDING),
        created_at_ms: Set(now),
        answered_at_ms: Set(None),
        answered_by: Set(None),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The other side of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A private chat of two users (lo, hi).
    Pair(i64, i64),
    Group(i64),
}

impl Target {
    pub fn pair(a: i64, b: i64) -> Self {
        Self::Pair(a.min(b), a.max(b))
    }

    /// The messaging service's conversation key.
    fn key(self) -> String {
        match self {
            Self::Pair(lo, hi) => format!("u:{lo}:{hi}"),
            Self::Group(group) => format!("g:{group}"),
        }
    }
}

/// A legacy message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Deterministic idempotency key (unique per sender).
    pub client_message_id: String,
    pub sender: i64,
    /// For a private message, the recipient.
    pub to_user: Option<i64>,
    /// The legacy time string as stored.
    pub client_time: String,
    pub sent_at_ms: i64,
    pub text: String,
    /// Users for whom this message is still unread (the legacy offline queue).
    pub unread_for: BTreeSet<i64>,
    /// Position in the legacy tables (a stable tie-break).
    pub order: usize,
}

/// Imports private conversations (a pair's two users are its participants) and counts their
/// messages under `kind`.
pub async fn import_private(
    tx: &DatabaseTransaction,
    conversations: impl IntoIterator<Item = (Target, Vec<NewMessage>)>,
    s: &mut Summary,
    kind: &'static str,
) -> anyhow::Result<()> {
    for (conv, messages) in conversations {
        let Target::Pair(lo, hi) = conv else { continue };
        let (imported, already) = import_conversation(tx, conv, messages, &[lo, hi]).await?;
        s.imported(kind, imported);
        s.already(kind, already);
    }
    Ok(())
}

/// Stores one conversation's new messages: the conversation row (created as the service does
/// on first send), gap-free seqs, one `Message` event in each participant's log, and each
/// participant's read mark (everything read except the messages still queued for them).
/// Returns (imported, already present).
pub async fn import_conversation(
    tx: &DatabaseTransaction,
    target: Target,
    mut messages: Vec<NewMessage>,
    participants: &[i64],
) -> anyhow::Result<(u64, u64)> {
    // Read messages first, then the queued ones, each by time: read marks are prefixes.
    messages.sort_by_key(|m| (!m.unread_for.is_empty(), m.sent_at_ms, m.order));
    let key = target.key();
    let conv = match conversation::Entity::find()
        .filter(conversation::Column::Key.eq(&key))
        .one(tx)
        .await?
    {
        Some(found) => found,
        None => {
            let (kind, group_id, lo, hi) = match target {
                Target::Pair(lo, hi) => (ConversationKind::Private, None, Some(lo), Some(hi)),
                Target::Group(group) => (ConversationKind::Group, Some(group), None, None),
            };
            conversation::Entity::insert(conversation::ActiveModel {
                kind: Set(kind as i16),
                key: Set(key.clone()),
                group_id: Set(group_id),
                user_lo: Set(lo),
                user_hi: Set(hi),
                last_seq: Set(0),
                last_message_id: Set(0),
                last_at_ms: Set(messages.first().map_or(0, |m| m.sent_at_ms)),
                ..Default::default()
            })
            .exec_with_returning(tx)
            .await?
        }
    };
    let (mut imported, mut already) = (0, 0);
    let mut seq = conv.last_seq;
    let mut last_id = conv.last_message_id;
    let mut last_at = conv.last_at_ms;
    let mut first_unread: std::collections::BTreeMap<i64, i64> = Default::default();
    for m in messages {
        let exists = message::Entity::find()
            .filter(message::Column::SenderId.eq(m.sender))
            .filter(message::Column::ClientMessageId.eq(&m.client_message_id))
            .one(tx)
            .await?
            .is_some();
        if exists {
            already += 1;
            continue;
        }
        seq += 1;
        let (to_user_id, to_group_id) = match target {
            Target::Pair(..) => (m.to_user, None),
            Target::Group(group) => (None, Some(group)),
        };
        let stored = message::Entity::insert(message::ActiveModel {
            conversation_id: Set(conv.id),
            seq: Set(seq),
            sender_id: Set(m.sender),
            to_user_id: Set(to_user_id),
            to_group_id: Set(to_group_id),
            kind: Set(MessageKind::Text as i16),
            text: Set(m.text.clone()),
            file_id: Set(String::new()),
            reply_to_id: Set(0),
            client_message_id: Set(m.client_message_id.clone()),
            client_time: Set(m.client_time.clone()),
            sent_at_ms: Set(m.sent_at_ms),
            recalled: Set(false),
            ..Default::default()
        })
        .exec_with_returning(tx)
        .await?;
        last_id = stored.id;
        last_at = last_at.max(stored.sent_at_ms);
        for user in &m.unread_for {
            first_unread.entry(*user).or_insert(seq);
        }
        let event = Kind::Message(api_message(&stored));
        Events::append(tx, participants, &event, stored.sent_at_ms).await?;
        imported += 1;
    }
    if imported > 0 {
        conversation::Entity::update_many()
            .col_expr(
                conversation::Column::LastSeq,
                sea_orm::sea_query::Expr::value(seq),
            )
            .col_expr(
                conversation::Column::LastMessageId,
                sea_orm::sea_query::Expr::value(last_id),
            )
            .col_expr(
                conversation::Column::LastAtMs,
                sea_orm::sea_query::Expr::value(last_at),
            )
            .filter(conversation::Column::Id.eq(conv.id))
            .exec(tx)
            .await?;
        for user in participants {
            let mark = first_unread.get(user).map_or(seq, |first| first - 1);
            advance(tx, conv.id, *user, mark).await?;
        }
    }
    Ok((imported, already))
}

/// Moves a read mark forward, never backward (as the messaging service does).
async fn advance<C: ConnectionTrait>(
    db: &C,
    conversation_id: i64,
    user: i64,
    read: i64,
) -> anyhow::Result<()> {
    let old = read_state::Entity::find_by_id((conversation_id, user))
        .one(db)
        .await?;
    let (old_read, cleared) = old.map_or((0, 0), |s| (s.last_read_seq, s.cleared_seq));
    if read <= old_read {
        return Ok(());
    }
    read_state::Entity::insert(read_state::ActiveModel {
        conversation_id: Set(conversation_id),
        user_id: Set(user),
        last_read_seq: Set(read),
        cleared_seq: Set(cleared),
    })
    .on_conflict(
        OnConflict::columns([
            read_state::Column::ConversationId,
            read_state::Column::UserId,
        ])
        .update_columns([read_state::Column::LastReadSeq])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The API form of a stored message (the messaging service's `convert::message`).
fn api_message(row: &message::Model) -> Message {
    use rosetta_proto::messaging::v1::message::To;
    let to = match (row.to_user_id, row.to_group_id) {
        (_, Some(group)) => Some(To::ToGroupId(group)),
        (Some(user), None) => Some(To::ToUserId(user)),
        (None, None) => None,
    };
    Message {
        id: row.id,
        conversation_id: row.conversation_id,
        seq: u64::try_from(row.seq).unwrap_or_default(),
        sender_id: row.sender_id,
        to,
        kind: i32::from(row.kind),
        text: row.text.clone(),
        file_id: row.file_id.clone(),
        reply_to_id: row.reply_to_id,
        client_message_id: row.client_message_id.clone(),
        client_time: row.client_time.clone(),
        sent_at_ms: row.sent_at_ms,
        recalled: row.recalled,
    }
}

/// After inserting explicit ids on PostgreSQL, moves the id sequences past them so that the
/// next registration or group gets a fresh id (SQLite's AUTOINCREMENT follows by itself).
pub async fn bump_sequences<C: ConnectionTrait>(db: &C) -> anyhow::Result<()> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    for table in ["users", "groups"] {
        db.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), \
             GREATEST((SELECT MAX(id) FROM \"{table}\"), 1))"
        ))
        .await?;
    }
    Ok(())
}

/// `n` fresh ids for `table` ("users" or "groups"), above every id in use. A real run on
/// PostgreSQL draws them from the table's own sequence, as registrations do, so a live node
/// cannot hand out the same ones; SQLite and dry runs take the next ids after the highest
/// (and, on SQLite, after the highest ever handed out): a registration racing the import
/// then makes the import fail as a whole, and a rerun resumes it.
pub async fn fresh_ids<C: ConnectionTrait>(
    db: &C,
    table: &str,
    n: usize,
    dry_run: bool,
) -> anyhow::Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let max = scalar(db, &format!("SELECT MAX(id) FROM \"{table}\""))
        .await?
        .unwrap_or(0);
    if backend == DatabaseBackend::Postgres && !dry_run {
        let draw = format!(
            "SELECT nextval(pg_get_serial_sequence('\"{table}\"', 'id')) \
             FROM generate_series(1, {n})"
        );
        let mut ids = column(db, &draw).await?;
        if ids.iter().any(|id| *id <= max) {
            // The sequence was behind explicitly inserted ids: move it past them, draw again.
            bump_sequences(db).await?;
            ids = column(db, &draw).await?;
        }
        anyhow::ensure!(
            ids.len() == n && ids.iter().all(|id| *id > max),
            "could not draw {n} fresh ids for {table}"
        );
        return Ok(ids);
    }
    let mut base = max;
    if backend == DatabaseBackend::Sqlite {
        let sql = format!("SELECT seq FROM sqlite_sequence WHERE name = '{table}'");
        // No sqlite_sequence row (or table) yet: nothing was ever handed out.
        if let Ok(Some(seq)) = scalar(db, &sql).await {
            base = base.max(seq);
        }
    }
    Ok((1..=n as i64).map(|i| base + i).collect())
}

async fn scalar<C: ConnectionTrait>(db: &C, sql: &str) -> anyhow::Result<Option<i64>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<Option<i64>>(0)?,
        None => None,
    })
}

async fn column<C: ConnectionTrait>(db: &C, sql: &str) -> anyhow::Result<Vec<i64>> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<i64>(0)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordVerifier as _, password_hash::phc::PasswordHash};

    use super::*;

    #[test]
    fn verifiers_are_standard_phc_strings() {
        let mut hasher = Hasher::default();
        let phc = hasher.hash("secret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"secret", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"Secret", &parsed)
                .is_err()
        );
    }
}
