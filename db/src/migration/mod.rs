//! Ordered schema migrations; each file is one step and is named after it.

use sea_orm_migration::prelude::*;

mod m0001_accounts;
mod m0002_social;
mod m0003_messaging;
mod m0004_files;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_accounts::Migration),
            Box::new(m0002_social::Migration),
            Box::new(m0003_messaging::Migration),
            Box::new(m0004_files::Migration),
        ]
    }
}
