//! Ordered schema migrations; each file is one step and is named after it.

use sea_orm_migration::prelude::*;

mod m0001_accounts;
mod m0002_social;
mod m0003_messaging;
mod m0004_files;
mod m0005_throttle_expiry;
mod m0006_group_invitations;
mod m0007_policy_epochs;
mod m0008_admin;
mod m0009_operations;
mod m0010_announcements;
mod m0011_session_watch;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_accounts::Migration),
            Box::new(m0002_social::Migration),
            Box::new(m0003_messaging::Migration),
            Box::new(m0004_files::Migration),
            Box::new(m0005_throttle_expiry::Migration),
            Box::new(m0006_group_invitations::Migration),
            Box::new(m0007_policy_epochs::Migration),
            Box::new(m0008_admin::Migration),
            Box::new(m0009_operations::Migration),
            Box::new(m0010_announcements::Migration),
            Box::new(m0011_session_watch::Migration),
        ]
    }
}

/// Creates index `name` over `cols` of `table`.
pub(crate) async fn index<T, C>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr>
where
    T: IntoIden + Copy + 'static,
    C: IntoIden + Copy + 'static,
{
    create_index(m, name, table, cols, false).await
}

/// Creates unique index `name` over `cols` of `table`.
pub(crate) async fn unique<T, C>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr>
where
    T: IntoIden + Copy + 'static,
    C: IntoIden + Copy + 'static,
{
    create_index(m, name, table, cols, true).await
}

async fn create_index<T, C>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + Copy + 'static,
    C: IntoIden + Copy + 'static,
{
    let mut index = Index::create();
    index.name(name).table(table);
    if unique {
        index.unique();
    }
    for col in cols {
        index.col(*col);
    }
    m.create_index(index.to_owned()).await
}
