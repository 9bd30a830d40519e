//! What the large-group tests and measurements share: a database per test, a "process"
//! (messaging with the social domain on one bus), users, groups, streams and row counts.

#![allow(dead_code)]

use std::{any::Any, sync::Arc, time::Duration};

use rosetta_auth::Caller;
use rosetta_db::{
    entity::{social::friendship, user},
    testing::PgDatabase,
};
use rosetta_kit::tasks::Tasks;
pub use rosetta_messaging::Resume;
use rosetta_messaging::{Bus, Events, LocalBus, Messaging, MessagingConfig, NatsBus, Presences};
use rosetta_proto::{
    messaging::v1::{
        CaughtUp, Event, Message, MessageKind, SendMessageRequest, event::Kind, message::To,
        send_message_request, subscribe_response::Item,
    },
    social::v1::CreateGroupRequest,
};
use rosetta_social::Social;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _,
};
use tokio_util::sync::CancellationToken;

/// Longest wait for something a test expects.
pub const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `name::sqlite` and `name::postgres` running `body(backend)`.
#[macro_export]
macro_rules! rosetta_messaging_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::support::Backend::Postgres).await;
            }
        }
    };
}

/// A database that exists for one test.
pub struct Store {
    pub url: String,
    _keep: Box<dyn Any + Send + Sync>,
}

pub async fn store(backend: Backend) -> Store {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
            Store {
                url,
                _keep: Box::new(dir),
            }
        }
        Backend::Postgres => {
            let pg = PgDatabase::create().await;
            Store {
                url: pg.url.clone(),
                _keep: Box::new(pg),
            }
        }
    }
}

pub fn nats_url() -> String {
    std::env::var("ROSETTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A subject prefix of this test's own: tests share the NATS server.
pub fn prefix() -> String {
    format!(
        "rosetta.test.groups{}x{}",
        std::process::id(),
        rosetta_db::now_ms()
    )
}

/// One process's messaging and social services over one bus.
pub struct Node {
    pub db: DatabaseConnection,
    pub messaging: Arc<Messaging>,
    pub social: Arc<Social>,
    pub nats: Option<Arc<NatsBus>>,
    _tasks: Tasks,
}

/// A process on `url`: with a NATS bus under `prefix`, or an in-process one; groups above
/// `threshold` members are large.
pub async fn node(url: &str, prefix: Option<&str>, threshold: usize) -> Node {
    let db = rosetta_db::connect(url).await.unwrap();
    let tasks = Tasks::new();
    let (bus, nats): (Arc<dyn Bus>, _) = match prefix {
        Some(prefix) => {
            let nats = NatsBus::connect(&nats_url(), prefix, 4096, &tasks)
                .await
                .unwrap_or_else(|err| panic!("NATS at {}: {err}", nats_url()));
            let nats = Arc::new(nats);
            (nats.clone(), Some(nats))
        }
        None => (Arc::new(LocalBus::new(4096)), None),
    };
    let config = MessagingConfig {
        group_fanout_max_members: threshold,
        ..Default::default()
    };
    let (messaging, events, presences) = messaging(&db, bus, config, &tasks);
    let social = Arc::new(Social::new(db.clone(), events, presences));
    Node {
        db,
        messaging,
        social,
        nats,
        _tasks: tasks,
    }
}

/// The messaging service of one process on `db` and `bus`, with its event log and presences.
pub fn messaging(
    db: &DatabaseConnection,
    bus: Arc<dyn Bus>,
    config: MessagingConfig,
    tasks: &Tasks,
) -> (Arc<Messaging>, Arc<Events>, Arc<Presences>) {
    let events = Arc::new(Events::new(db.clone(), bus.clone()));
    let presences = Arc::new(Presences::new(
        db.clone(),
        config.presence_timeout,
        events.clone(),
    ));
    let messaging = Arc::new(Messaging::new(
        db.clone(),
        config,
        bus,
        events.clone(),
        presences.clone(),
        tasks,
    ));
    (messaging, events, presences)
}

/// `n` users named `<prefix>0…`, stored straight into the database (the account service is
/// not part of this crate); their ids in order.
pub async fn users(db: &DatabaseConnection, prefix: &str, n: usize) -> Vec<i64> {
    let rows: Vec<user::ActiveModel> = (0..n)
        .map(|i| user::ActiveModel {
            username: Set(format!("{prefix}{i:05}")),
            ocid: Set(format!("oc-{prefix}{i:05}")),
            nickname: Set(format!("{prefix}{i}")),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            created_at_ms: Set(rosetta_db::now_ms()),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        user::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    user::Entity::find()
        .filter(user::Column::Username.starts_with(prefix))
        .order_by_asc(user::Column::Username)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect()
}

fn caller(user: i64) -> Caller {
    Caller {
        user_id: user,
        session_id: String::new(),
    }
}

/// A group of `owner` and `members`, created through the social service (friends are added
/// at once, as a bridge's CreateGroup does).
pub async fn group(node: &Node, owner: i64, members: &[i64]) -> i64 {
    let now = rosetta_db::now_ms();
    let rows: Vec<friendship::ActiveModel> = members
        .iter()
        .flat_map(|&m| [(owner, m), (m, owner)])
        .map(|(user_id, friend_id)| friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            since_ms: Set(now),
        })
        .collect();
    for chunk in rows.chunks(1000) {
        friendship::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing()
            .exec_without_returning(&node.db)
            .await
            .unwrap();
    }
    let request = CreateGroupRequest {
        name: "large".into(),
        member_ids: members.to_vec(),
        friends_only: true,
        ..Default::default()
    };
    node.social
        .create_group(&caller(owner), request)
        .await
        .expect("group created")
        .id
}

pub async fn kick(node: &Node, owner: i64, group: i64, user: i64) {
    node.social
        .kick_member(&caller(owner), group, user)
        .await
        .expect("kicked");
}

pub async fn send(node: &Node, from: i64, group: i64, text: &str) -> Message {
    let request = SendMessageRequest {
        to: Some(send_message_request::To::ToGroupId(group)),
        kind: MessageKind::Text.into(),
        text: text.into(),
        client_message_id: format!("{from}-{}-{text}", rosetta_db::now_ms()),
        ..Default::default()
    };
    node.messaging
        .send(from, request)
        .await
        .expect("sent")
        .message
        .expect("stored")
}

/// Rows of the tables a send or a creation writes.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub events: i64,
    pub messages: i64,
    pub members: i64,
    /// Sum of every log head: moves with any log row.
    pub heads_total: i64,
}

pub async fn counts(db: &DatabaseConnection) -> Counts {
    let one = |sql: &'static str| async move {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
    };
    Counts {
        events: one("SELECT COUNT(*) FROM user_events").await,
        messages: one("SELECT COUNT(*) FROM messages").await,
        members: one("SELECT COUNT(*) FROM group_members").await,
        heads_total: one("SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) FROM event_heads")
            .await,
    }
}

/// An open stream: what it replayed before `CaughtUp`, then live items.
pub struct Stream {
    rx: rosetta_messaging::Inbox,
    pub replayed: Vec<Event>,
    pub caught_up: CaughtUp,
    stop: CancellationToken,
}

/// Opens a stream of `user` from `resume` and waits for its `CaughtUp`.
pub async fn open(node: &Node, user: i64, resume: Resume) -> Stream {
    let (tx, mut rx) = rosetta_messaging::outbox(4096);
    let stop = CancellationToken::new();
    tokio::spawn(
        node.messaging
            .clone()
            .subscribe(user, resume, tx, None, stop.clone()),
    );
    let mut replayed = Vec::new();
    loop {
        match next_item(&mut rx).await {
            Item::CaughtUp(caught_up) => {
                return Stream {
                    rx,
                    replayed,
                    caught_up,
                    stop,
                };
            }
            Item::Event(event) => replayed.push(event),
        }
    }
}

async fn next_item(rx: &mut rosetta_messaging::Inbox) -> Item {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an item within the patience")
        .expect("the stream is open")
        .expect("the stream is healthy")
        .item
        .expect("an item")
}

impl Stream {
    /// The next message (skipping other events): its event seq and the message.
    pub async fn next_message(&mut self) -> (u64, Message) {
        loop {
            if let Item::Event(Event {
                seq,
                kind: Some(Kind::Message(message)),
                ..
            }) = next_item(&mut self.rx).await
            {
                return (seq, message);
            }
        }
    }

    pub fn replayed_messages(&self) -> Vec<Message> {
        self.replayed
            .iter()
            .filter_map(|e| match &e.kind {
                Some(Kind::Message(m)) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Moves `resume` on as the bridge kit does: the replay, then the catch-up marker.
    pub fn keep(&self, resume: &mut Resume) {
        for event in &self.replayed {
            if event.seq > 0 {
                resume.after_seq = Some(resume.after_seq.unwrap_or(0).max(event.seq));
            }
            if let Some(Kind::Message(m)) = &event.kind {
                self.seen(m, resume);
            }
        }
        resume.after_seq = Some(resume.after_seq.unwrap_or(0).max(self.caught_up.head_seq));
        for cursor in &self.caught_up.conversation_cursors {
            let at = resume.cursors.entry(cursor.conversation_id).or_default();
            *at = (*at).max(cursor.seq);
        }
    }

    /// A group message seen: its conversation's cursor moves.
    pub fn seen(&self, message: &Message, resume: &mut Resume) {
        if matches!(message.to, Some(To::ToGroupId(_))) {
            let at = resume.cursors.entry(message.conversation_id).or_default();
            *at = (*at).max(message.seq);
        }
    }

    /// Ends the stream (as a server shutdown or a broken connection would) and waits until
    /// it is gone.
    pub async fn close(mut self) {
        self.stop.cancel();
        while let Ok(Some(_)) = tokio::time::timeout(PATIENCE, self.rx.recv()).await {}
    }
}

pub async fn next_message(stream: &mut Stream) -> (u64, Message) {
    stream.next_message().await
}
