//! What the crate's unit tests share.

use rosetta_db::entity::{
    social::{group, group_member},
    user,
};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait as _};

/// Stores a user named `name` straight into the database (the account service is not part of
/// this crate); returns the id.
pub async fn user(db: &DatabaseConnection, name: &str) -> i64 {
    user::Entity::insert(user::ActiveModel {
        username: Set(name.into()),
        ocid: Set(format!("oc-{name}")),
        nickname: Set(name.into()),
        avatar: Set(String::new()),
        signature: Set(String::new()),
        gender: Set(0),
        vip: Set(false),
        security_question_id: Set(0),
        created_at_ms: Set(rosetta_db::now_ms()),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
    .expect("user stored")
    .id
}

/// A group of `members`; returns its id.
pub async fn group_of(db: &DatabaseConnection, members: &[i64]) -> i64 {
    let now = rosetta_db::now_ms();
    let id = group::Entity::insert(group::ActiveModel {
        name: Set("g".into()),
        owner_id: Set(members[0]),
        public: Set(false),
        created_at_ms: Set(now),
        system: Set(false),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
    .unwrap()
    .id;
    group_member::Entity::insert_many(members.iter().map(|&user| group_member::ActiveModel {
        group_id: Set(id),
        user_id: Set(user),
        role: Set(0),
        joined_at_ms: Set(now),
        muted_until_ms: Set(0),
    }))
    .exec_without_returning(db)
    .await
    .unwrap();
    id
}
