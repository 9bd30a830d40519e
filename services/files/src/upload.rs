//! Streaming upload: metadata first, then chunks, written straight into a multipart upload
//! (memory stays at a few parts whatever the file size) and hashed on the way. The object only
//! becomes complete, and the row is only written, when exactly the declared size arrived;
//! every other ending aborts the multipart upload, which leaves no object behind.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::{ObjectStoreExt as _, WriteMultipart};
use rosetta_auth::Caller;
use rosetta_db::{entity::files::file, now_ms};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::files::v1::{FileInfo, UploadMetadata, UploadRequest, upload_request::Part};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use crate::{Files, StoreKind, access, info, names, store};

/// Parts in flight at once; with the part being filled this bounds an upload's buffers to
/// three parts (see [`Files::part_bytes`]).
const PARTS_IN_FLIGHT: usize = 2;

/// A validated upload request, ready to be stored.
struct Plan {
    name: String,
    folder: String,
    size: u64,
    content_type: String,
    visibility: i16,
    conv_user_id: Option<i64>,
    conv_group_id: Option<i64>,
}

impl Files {
    /// Stores the file streamed by `parts` for `caller`. Run it to completion (not inside a
    /// future that may be dropped) so that a cut-off upload is always aborted.
    pub async fn upload<S>(&self, caller: &Caller, mut parts: S) -> ApiResult<FileInfo>
    where
        S: Stream<Item = Result<UploadRequest, Status>> + Unpin,
    {
        let metadata = match parts.next().await {
            Some(Ok(UploadRequest {
                part: Some(Part::Metadata(metadata)),
            })) => metadata,
            Some(Err(status)) => return Err(interrupted(&status)),
            _ => {
                return Err(ApiError::invalid(
                    Reason::BadUpload,
                    "the first upload message must carry the metadata",
                ));
            }
        };
        let plan = self.plan(caller, metadata).await?;
        let _reservation = self.reserve(caller.user_id, plan.size).await?;

        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = store::object_key(&id);
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(ApiError::internal)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes());
        let sha256 = match receive(&mut parts, &mut writer, plan.size).await {
            Ok(sha256) => sha256,
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%key, %abort, "could not abort an upload");
                }
                return Err(err);
            }
        };
        // `finish` aborts the upload itself when a part fails.
        writer.finish().await.map_err(ApiError::internal)?;

        let row = file::ActiveModel {
            id: Set(id),
            owner_id: Set(caller.user_id),
            name: Set(plan.name),
            folder: Set(plan.folder),
            // Checked by `plan`: the size fits a BIGINT.
            size: Set(i64::try_from(plan.size).unwrap_or(i64::MAX)),
            sha256: Set(sha256),
            content_type: Set(plan.content_type),
            visibility: Set(plan.visibility),
            conv_user_id: Set(plan.conv_user_id),
            conv_group_id: Set(plan.conv_group_id),
            object_key: Set(key.to_string()),
            created_at_ms: Set(now_ms()),
            ..Default::default()
        };
        match row.insert(&self.db).await {
            Ok(row) => Ok(info::file_info(&row)),
            Err(err) => {
                self.remove_blob(&key).await;
                Err(err.into())
            }
        }
    }

    /// Bytes per multipart part: S3 refuses parts under 5 MiB (but the last); a local file
    /// takes any size, so keep its buffers small.
    fn part_bytes(&self) -> usize {
        match self.settings.store.kind {
            StoreKind::S3 => 5 * 1024 * 1024,
            StoreKind::Local => 1024 * 1024,
        }
    }

    async fn plan(&self, caller: &Caller, m: UploadMetadata) -> ApiResult<Plan> {
        if i64::try_from(m.size).is_err() {
            return Err(ApiError::invalid(
                Reason::TooLarge,
                "size does not fit a 63-bit count",
            ));
        }
        let name = names::file_name(&m.name)?;
        let folder = names::folder(&m.folder)?;
        let content_type = names::content_type(&m.content_type)?;
        let (visibility, conv_user_id, conv_group_id) = access::sharing(
            &self.db,
            caller.user_id,
            m.visibility,
            m.conversation.as_ref(),
        )
        .await?;
        Ok(Plan {
            name,
            folder,
            size: m.size,
            content_type,
            visibility: visibility as i16,
            conv_user_id,
            conv_group_id,
        })
    }
}

/// Moves the chunks into `writer` and returns the content's hex SHA-256, or why the upload
/// cannot be kept: more or fewer bytes than declared, a second metadata message, or a stream
/// that broke off.
async fn receive<S>(parts: &mut S, writer: &mut WriteMultipart, size: u64) -> ApiResult<String>
where
    S: Stream<Item = Result<UploadRequest, Status>> + Unpin,
{
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(part) = parts.next().await {
        let chunk = match part {
            Ok(UploadRequest {
                part: Some(Part::Chunk(chunk)),
            }) => chunk,
            Ok(UploadRequest { part: None }) => continue,
            Ok(UploadRequest {
                part: Some(Part::Metadata(_)),
            }) => {
                return Err(ApiError::invalid(
                    Reason::BadUpload,
                    "metadata may only be sent once, first",
                ));
            }
            Err(status) => return Err(interrupted(&status)),
        };
        received = received.saturating_add(chunk.len() as u64);
        if received > size {
            return Err(size_mismatch(size, received, "at least "));
        }
        hasher.update(&chunk);
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(ApiError::internal)?;
        writer.put(Bytes::from(chunk));
    }
    if received != size {
        return Err(size_mismatch(size, received, ""));
    }
    Ok(hex::encode(hasher.finalize()))
}

fn size_mismatch(declared: u64, received: u64, qualifier: &str) -> ApiError {
    ApiError::invalid(
        Reason::SizeMismatch,
        format!("declared {declared} bytes but sent {qualifier}{received}"),
    )
}

/// The request stream failed: the client went away, or sent a message the codec refused (one
/// over the 4 MiB message limit, say).
fn interrupted(status: &Status) -> ApiError {
    tracing::debug!(%status, "upload stream broke off");
    ApiError::new(
        Code::Cancelled,
        Reason::UploadInterrupted,
        format!("the upload stream broke off: {}", status.message()),
    )
}
