//! The service's state and its small operations: look up, delete, report quota.

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt as _, path::Path};
use rosetta_auth::Caller;
use rosetta_db::{entity::files::file, sea_orm::DatabaseConnection};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::files::v1::{FileInfo, Quota};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{access, info, quota::Reservations, settings::FilesSettings};

pub struct Files {
    pub(crate) db: DatabaseConnection,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) settings: FilesSettings,
    /// Bytes of uploads in flight in this process, counted against their owners' quotas.
    pub(crate) reservations: Reservations,
}

impl Files {
    pub fn new(
        db: DatabaseConnection,
        store: Arc<dyn ObjectStore>,
        settings: FilesSettings,
    ) -> Self {
        Self {
            db,
            store,
            settings,
            reservations: Reservations::default(),
        }
    }

    /// A file's row, if it exists.
    pub(crate) async fn find(&self, file_id: &str) -> ApiResult<file::Model> {
        file::Entity::find()
            .filter(file::Column::Id.eq(file_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("no such file"))
    }

    /// A file the caller may see.
    pub(crate) async fn visible(&self, caller: &Caller, file_id: &str) -> ApiResult<file::Model> {
        let row = self.find(file_id).await?;
        if !access::can_see(&self.db, caller.user_id, &row).await? {
            return Err(ApiError::denied(
                Reason::Forbidden,
                "this file is not shared with you",
            ));
        }
        Ok(row)
    }

    pub async fn get_file(&self, caller: &Caller, file_id: &str) -> ApiResult<FileInfo> {
        Ok(info::file_info(&self.visible(caller, file_id).await?))
    }

    /// Deletes one of the caller's files: the row first (the file is gone for everyone at
    /// once), then the blob.
    pub async fn delete_file(&self, caller: &Caller, file_id: &str) -> ApiResult<()> {
        let row = self.visible(caller, file_id).await?;
        if row.owner_id != caller.user_id {
            return Err(ApiError::denied(
                Reason::Forbidden,
                "only the owner deletes a file",
            ));
        }
        file::Entity::delete_by_id(row.seq).exec(&self.db).await?;
        self.remove_blob(&Path::from(row.object_key.as_str())).await;
        Ok(())
    }

    pub async fn quota(&self, caller: &Caller) -> ApiResult<Quota> {
        Ok(Quota {
            used_bytes: self.used_bytes(caller.user_id).await?,
            limit_bytes: self.settings.quota_bytes,
            max_file_bytes: self.settings.max_file_bytes,
        })
    }

    /// Deletes a blob whose row is gone or was never written; a failure leaves an orphan
    /// object, which is logged (it is invisible to clients).
    pub(crate) async fn remove_blob(&self, key: &Path) {
        if let Err(err) = self.store.delete(key).await {
            tracing::warn!(%key, %err, "could not delete blob");
        }
    }
}
