//! gRPC handlers: unwrap the request, take identity from the auth layer, call the domain.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt, stream};
use rosetta_auth::Caller;
use rosetta_kit::ApiError;
use rosetta_proto::files::v1::{download_response::Part, files_service_server::FilesService, *};
use tonic::{Request, Response, Status, Streaming};

use crate::Files;

pub struct FilesGrpc {
    files: Arc<Files>,
}

impl FilesGrpc {
    pub fn new(files: Arc<Files>) -> Self {
        Self { files }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl FilesService for FilesGrpc {
    async fn upload(&self, req: Request<Streaming<UploadRequest>>) -> Reply<FileInfo> {
        let caller = Caller::of(&req)?;
        let parts = req.into_inner();
        let files = self.files.clone();
        // A client that goes away can drop this handler mid-upload; the upload runs in a task
        // of its own so that it always reaches its abort or commit.
        let task = tokio::spawn(async move { files.upload(&caller, parts).await });
        let info = task.await.map_err(ApiError::internal)??;
        Ok(Response::new(info))
    }

    type DownloadStream = Pin<Box<dyn Stream<Item = Result<DownloadResponse, Status>> + Send>>;

    async fn download(&self, req: Request<DownloadRequest>) -> Reply<Self::DownloadStream> {
        let caller = Caller::of(&req)?;
        let req = req.into_inner();
        let (info, chunks) = self
            .files
            .download(&caller, &req.file_id, req.offset)
            .await?;
        let head = stream::once(async move {
            Ok(DownloadResponse {
                part: Some(Part::Info(info)),
            })
        });
        let body = chunks.map(|chunk| match chunk {
            Ok(bytes) => Ok(DownloadResponse {
                part: Some(Part::Chunk(bytes.to_vec())),
            }),
            Err(err) => Err(Status::from(err)),
        });
        Ok(Response::new(Box::pin(head.chain(body))))
    }

    async fn get_file(&self, req: Request<GetFileRequest>) -> Reply<FileInfo> {
        let caller = Caller::of(&req)?;
        let info = self
            .files
            .get_file(&caller, &req.into_inner().file_id)
            .await?;
        Ok(Response::new(info))
    }

    async fn list_files(&self, req: Request<ListFilesRequest>) -> Reply<ListFilesResponse> {
        let caller = Caller::of(&req)?;
        Ok(Response::new(
            self.files.list(&caller, req.into_inner()).await?,
        ))
    }

    async fn delete_file(&self, req: Request<DeleteFileRequest>) -> Reply<DeleteFileResponse> {
        let caller = Caller::of(&req)?;
        self.files
            .delete_file(&caller, &req.into_inner().file_id)
            .await?;
        Ok(Response::new(DeleteFileResponse {}))
    }

    async fn get_quota(&self, req: Request<GetQuotaRequest>) -> Reply<Quota> {
        let caller = Caller::of(&req)?;
        Ok(Response::new(self.files.quota(&caller).await?))
    }
}
