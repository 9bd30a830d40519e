//! `policy_epochs`: per user, a counter of changes to whom the user may message (migration
//! `m0007_policy_epochs` says why). Writers [`bump`] inside the transaction of their change;
//! messaging reads with [`read`].

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DatabaseBackend, QueryOrder as _, QuerySelect as _,
    entity::prelude::*,
    sea_query::{ExprTrait as _, OnConflict},
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_epochs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub epoch: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Moves the epoch of every user in `users` forward by one, in ONE statement, on `db` (the
/// transaction of the change). Users are deduplicated (PostgreSQL refuses an upsert that
/// touches a row twice) and sorted, so concurrent bumps lock rows in one order.
pub async fn bump<C: ConnectionTrait>(db: &C, users: &[i64]) -> Result<(), DbErr> {
    let mut users = users.to_vec();
    users.sort_unstable();
    users.dedup();
    if users.is_empty() {
        return Ok(());
    }
    let rows = users.into_iter().map(|user_id| ActiveModel {
        user_id: Set(user_id),
        epoch: Set(1),
    });
    Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(Column::UserId)
                .value(Column::Epoch, Expr::col((Entity, Column::Epoch)).add(1))
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Creates `user`'s row (epoch 0) unless it exists, so that [`read`] has a row to lock.
pub async fn ensure<C: ConnectionTrait>(db: &C, user: i64) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        user_id: Set(user),
        epoch: Set(0),
    })
    .on_conflict(OnConflict::column(Column::UserId).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The current epochs of `users` (missing rows: absent from the map, i.e. epoch 0), in ONE
/// statement. With `share_lock` on PostgreSQL the rows are read `FOR SHARE` in id order: a
/// concurrent [`bump`] then waits until the reading transaction ends, so what the reader
/// decides under these epochs holds until its commit. (SQLite has no row locks; there the
/// reader holds the database's write lock instead.)
pub async fn read<C: ConnectionTrait>(
    db: &C,
    users: &[i64],
    share_lock: bool,
) -> Result<HashMap<i64, i64>, DbErr> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = Entity::find()
        .select_only()
        .column(Column::UserId)
        .column(Column::Epoch)
        .filter(Column::UserId.is_in(users.iter().copied()))
        .order_by_asc(Column::UserId);
    if share_lock && db.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_shared();
    }
    let rows: Vec<(i64, i64)> = query.into_tuple().all(db).await?;
    Ok(rows.into_iter().collect())
}

/// The current epoch of one user (`None` without a row: epoch 0), no lock.
pub async fn of<C: ConnectionTrait>(db: &C, user: i64) -> Result<Option<i64>, DbErr> {
    Ok(Entity::find_by_id(user).one(db).await?.map(|m| m.epoch))
}
