//! What the crate's unit tests share.

use rosetta_db::entity::user;
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
