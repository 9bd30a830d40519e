//! Streaming download: the blob is read as a stream from `offset` and re-cut into chunks of a
//! fixed size, so memory stays at one chunk whatever the file size (the gRPC layer pulls the
//! next chunk only when the client's flow-control window has room).

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream::BoxStream};
use object_store::{GetOptions, GetRange, path::Path};
use rosetta_auth::Caller;
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::files::v1::FileInfo;

use crate::{Files, info};

/// Bytes per download message.
pub const CHUNK_BYTES: usize = 256 * 1024;

pub type Chunks = BoxStream<'static, ApiResult<Bytes>>;

impl Files {
    /// The file's info and its bytes from `offset` (which may equal the size: no bytes).
    pub async fn download(
        &self,
        caller: &Caller,
        file_id: &str,
        offset: u64,
    ) -> ApiResult<(FileInfo, Chunks)> {
        let row = self.visible(caller, file_id).await?;
        let info = info::file_info(&row);
        if offset > info.size {
            return Err(ApiError::new(
                tonic::Code::OutOfRange,
                Reason::BadOffset,
                format!("offset {offset} is past the end ({} bytes)", info.size),
            ));
        }
        if offset == info.size {
            return Ok((info, futures::stream::empty().boxed()));
        }
        let options = GetOptions {
            range: Some(GetRange::Offset(offset)),
            ..Default::default()
        };
        let blob = self
            .store
            .get_opts(&Path::from(row.object_key.as_str()), options)
            .await
            .map_err(ApiError::internal)?;
        let bytes = blob.into_stream().map(|r| r.map_err(ApiError::internal));
        Ok((info, rechunk(bytes.boxed(), CHUNK_BYTES)))
    }
}

/// Re-cuts `inner` into chunks of exactly `size` bytes (the last may be shorter).
fn rechunk(inner: Chunks, size: usize) -> Chunks {
    futures::stream::unfold(
        (inner, BytesMut::new(), false),
        move |(mut inner, mut buf, mut done)| async move {
            while !done && buf.len() < size {
                match inner.next().await {
                    Some(Ok(bytes)) => buf.extend_from_slice(&bytes),
                    Some(Err(err)) => return Some((Err(err), (inner, BytesMut::new(), true))),
                    None => done = true,
                }
            }
            if buf.is_empty() {
                return None;
            }
            let take = buf.len().min(size);
            let chunk = buf.split_to(take).freeze();
            Some((Ok(chunk), (inner, buf, done)))
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rechunk_cuts_even_pieces() {
        let pieces = vec![3usize, 5, 1, 9, 0, 2]
            .into_iter()
            .map(|n| Ok(Bytes::from(vec![7u8; n])));
        let out: Vec<usize> = rechunk(futures::stream::iter(pieces).boxed(), 4)
            .map(|c| c.unwrap().len())
            .collect()
            .await;
        assert_eq!(out, vec![4, 4, 4, 4, 4]);
    }
}
