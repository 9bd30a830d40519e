//! What a send costs the database: with its decision cached, a private send skips the block
//! and friendship reads, and its write reads the sender's epoch once (on SQLite, measured by
//! this test: 13 statements a send, against 14 before the cache; the 4 after the write are
//! `recipient_online`'s presence view). Statements are counted from the span `rosetta_db` opens for
//! each one (target `rosetta_db::sql`, field `db.statement`).

use std::sync::{Arc, Mutex};

use rosetta_db::entity::social::friendship;
use rosetta_kit::tasks::Tasks;
use rosetta_proto::messaging::v1::{MessageKind, SendMessageRequest, send_message_request::To};
use sea_orm::{ActiveValue::Set, EntityTrait as _};
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

use crate::{
    Events, LocalBus, Messaging, MessagingConfig, Presences, bus::Bus, test_support::user,
};

/// The SQL of every statement run while it is the thread's subscriber.
#[derive(Default, Clone)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Sql<'a>(&'a mut Option<String>);

impl Visit for Sql<'_> {
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "db.statement" {
            *self.0 = Some(value.to_owned());
        }
    }
}

impl Subscriber for Statements {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        if span.metadata().target() == "rosetta_db::sql" {
            let mut sql = None;
            span.record(&mut Sql(&mut sql));
            self.0.lock().unwrap().extend(sql);
        }
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// How many statements name a policy table (the presence view after the write reads some
/// too).
fn policy_reads(statements: &[String]) -> usize {
    let policy = [
        "\"blocks\"",
        "\"friendships\"",
        "\"group_members\"",
        "\"groups\"",
    ];
    statements
        .iter()
        .filter(|sql| policy.iter().any(|table| sql.contains(table)))
        .count()
}

#[tokio::test]
async fn a_cached_send_skips_the_policy_reads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let db = rosetta_db::connect(&url).await.unwrap();
    let (alice, bob) = (user(&db, "alice").await, user(&db, "bob").await);
    let row = |user_id, friend_id| friendship::ActiveModel {
        user_id: Set(user_id),
        friend_id: Set(friend_id),
        since_ms: Set(0),
    };
    friendship::Entity::insert_many([row(alice, bob), row(bob, alice)])
        .exec_without_returning(&db)
        .await
        .unwrap();
    let config = MessagingConfig::default();
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
    let events = Arc::new(Events::new(db.clone(), bus.clone()));
    let presences = Arc::new(Presences::new(
        db.clone(),
        config.presence_timeout,
        events.clone(),
    ));
    let tasks = Tasks::new();
    let messaging = Messaging::new(db, config, bus, events, presences, &tasks);

    let statements = Statements::default();
    let _counting = tracing::dispatcher::set_default(&tracing::Dispatch::new(statements.clone()));
    let mut sends = Vec::new();
    for i in 0..3 {
        let request = SendMessageRequest {
            to: Some(To::ToUserId(bob)),
            kind: MessageKind::Text.into(),
            text: "hi".into(),
            client_message_id: format!("m{i}"),
            ..Default::default()
        };
        messaging.send(alice, request).await.unwrap();
        sends.push(statements.take());
    }
    // The writer's own statements (the epoch confirmation among them) run in its lane's task,
    // outside this capture; tests/policy_cache.rs shows the confirmation binding.
    let (miss, hits) = (&sends[0], &sends[1..]);
    for hit in hits {
        assert_eq!(
            policy_reads(miss) - policy_reads(hit),
            2,
            "the cached decision saves the block and friendship reads:\n{miss:#?}\n{hit:#?}"
        );
    }
}
