//! The file server (9988): uploads of files and folders, the shared listing and downloads, all
//! through the files service with public visibility. Bytes are streamed in chunks both ways;
//! no file is ever held whole in memory.

use std::{collections::HashMap, io, net::SocketAddr, sync::Arc, time::Duration};

use rosetta_bridge_kit::{Connections, UserSession, all_pages};
use rosetta_proto::{
    common::v1::PageRequest,
    files::v1::{
        DownloadRequest, FileInfo, ListFilesRequest, ListScope, UploadMetadata, UploadRequest,
        Visibility, download_response, list_entry, upload_request,
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{self, Credentials, FileRequest, Listed},
    logins::Recheck,
    uploads::{Arrival, Running, has_input},
    wire::{self, FrameReader, RAW_CHUNK},
};

/// The listing stays well under what the client reads in its single `recv` (§1.3): the newest
/// rows that fit.
const MAX_LISTING_BYTES: usize = 60_000;
/// Listing pages read at most, of [`PAGE_SIZE`] entries.
const MAX_PAGES: usize = 20;
const PAGE_SIZE: u32 = 500;

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    conns: Connections,
    shared: Arc<Shared>,
    mut arrival: Arrival,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    // Held from an upload's header while more of the same connection's units are already
    // here: a folder's files count as one upload in progress, with no gap between them.
    let mut running: Option<Running> = None;
    loop {
        let Some(request) = next_request(&mut reader, &conns).await else {
            break;
        };
        // A request has come: an upload or a download may now take as long as it takes.
        conns.handshake.done();
        let keep_open = match request {
            FileRequest::Upload {
                credentials,
                file_name,
                size,
                folder,
            } => {
                conns.counters.frame_in("upload");
                let span = tracing::info_span!("frame", command = "upload", size);
                if running.is_none() {
                    running = Some(shared.uploads.start(&credentials.name));
                }
                arrival.read();
                let keep = upload(
                    &mut reader,
                    &shared,
                    &conns,
                    peer,
                    credentials,
                    &file_name,
                    size,
                    folder.is_some(),
                )
                .instrument(span)
                .await;
                if !reader.buffered() && !has_input(reader.get_ref().as_ref()) {
                    running = None;
                }
                keep
            }
            FileRequest::List { credentials } => {
                conns.counters.frame_in("list");
                arrival.read();
                let span = tracing::info_span!("frame", command = "list");
                shared.uploads.settled(&arrival, &credentials.name).await;
                list(&mut write, &shared, &conns, peer, credentials)
                    .instrument(span)
                    .await
            }
            FileRequest::Download {
                credentials,
                file_name,
            } => {
                conns.counters.frame_in("download");
                arrival.read();
                let span = tracing::info_span!("frame", command = "download");
                shared.uploads.settled(&arrival, &credentials.name).await;
                download(&mut write, &shared, &conns, peer, credentials, &file_name)
                    .instrument(span)
                    .await;
                // The close is the client's only end-of-download signal.
                false
            }
        };
        if !keep_open {
            break;
        }
    }
}

/// The connection's next request; `None` when it ends (closed, a bad frame, shutting down).
async fn next_request<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    conns: &Connections,
) -> Option<FileRequest> {
    let frame = tokio::select! {
        () = conns.closing.cancelled() => return None,
        frame = reader.next() => frame,
    };
    match frame.map(|f| f.map(|map| FileRequest::parse(&map))) {
        Ok(Some(Ok(request))) => Some(request),
        Ok(None) => None,
        Ok(Some(Err(err))) => {
            tracing::debug!(?err, "file request refused");
            conns.counters.error("file");
            None
        }
        Err(err) => {
            tracing::debug!(%err, "file connection refused");
            conns.counters.error("file");
            None
        }
    }
}

async fn login(
    shared: &Shared,
    conns: &Connections,
    peer: SocketAddr,
    credentials: Credentials,
    command: &'static str,
) -> Option<Arc<UserSession>> {
    match shared
        .logins
        .authenticate(
            &credentials.name,
            &credentials.password,
            peer,
            &shared.backend.for_client(peer.ip()),
            Recheck::Now,
        )
        .await
    {
        Ok(session) => Some(session),
        Err(err) => {
            tracing::info!(?err, "file request with bad credentials");
            conns.counters.error(command);
            None
        }
    }
}

/// Splits a client path (`/` or `\` separated, as Windows clients send) into folder and base
/// name; `None` for absolute paths, drive letters, `.`/`..` and empty parts.
pub fn split_path(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || *p == "."
            || *p == ".."
            || p.contains(':')
            || p.chars().any(char::is_control)
    }) {
        return None;
    }
    let (base, folder) = parts.split_last()?;
    Some((folder.join("/"), (*base).to_owned()))
}

/// Stores one uploaded file, reading exactly `size` raw bytes whatever happens (so the next
/// header is found); false when the connection must end. Refused uploads get no reply, as the
/// client reads none.
#[allow(clippy::too_many_arguments)]
async fn upload<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    shared: &Shared,
    conns: &Connections,
    peer: SocketAddr,
    credentials: Credentials,
    file_name: &str,
    size: u64,
    in_folder: bool,
) -> bool {
    let session = login(shared, conns, peer, credentials, "upload").await;
    let path = split_path(file_name);
    let unsafe_name = path.is_none();
    let (Some(session), Some((folder, name))) = (session, path) else {
        if unsafe_name {
            tracing::info!(file_name, "upload with an unsafe name refused");
            conns.counters.error("upload");
        }
        return reader.discard(size).await.unwrap_or(false);
    };
    let (tx, rx) = mpsc::channel(4);
    let metadata = UploadRequest {
        part: Some(upload_request::Part::Metadata(UploadMetadata {
            name,
            size,
            folder,
            visibility: Visibility::Public.into(),
            ..Default::default()
        })),
    };
    let sender = tx.send(metadata).await.is_ok().then_some(tx);
    let request = match session.request(ReceiverStream::new(rx)).await {
        Ok(mut request) => {
            // Fed by the client's socket at its pace: the backend's default deadline would
            // cut a large upload from a slow client short.
            request.set_timeout(transfer_deadline(size));
            request
        }
        Err(status) => {
            tracing::warn!(%status, "upload not started");
            conns.counters.error("upload");
            return reader.discard(size).await.unwrap_or(false);
        }
    };
    let mut files = shared.backend.files();
    let call = tokio::spawn(
        async move { files.upload(request).await }.instrument(tracing::Span::current()),
    );
    if !feed(reader, sender, size).await {
        // The peer left mid-file: cancel, so nothing partial is stored.
        call.abort();
        return false;
    }
    match call.await {
        Ok(Ok(info)) => {
            tracing::info!(file_id = %info.get_ref().id, in_folder, "file uploaded");
        }
        Ok(Err(status)) => {
            tracing::info!(%status, "upload refused");
            conns.counters.error("upload");
        }
        Err(err) => {
            tracing::warn!(%err, "upload task failed");
            conns.counters.error("upload");
        }
    }
    true
}

/// Reads exactly `size` raw bytes into the upload's `sender` (or drops them once the call
/// ended early, refused); false when the peer left first.
async fn feed<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    mut sender: Option<mpsc::Sender<UploadRequest>>,
    size: u64,
) -> bool {
    let mut remaining = size;
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(RAW_CHUNK)
            .min(RAW_CHUNK);
        let chunk = match reader.raw(want).await {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => return false,
        };
        remaining -= chunk.len() as u64;
        if let Some(tx) = &sender {
            let part = UploadRequest {
                part: Some(upload_request::Part::Chunk(chunk.to_vec())),
            };
            if tx.send(part).await.is_err() {
                // The call ended early (refused); the rest is read and dropped.
                sender = None;
            }
        }
    }
    true
}

/// Sends the shared listing; false when the connection must end. Bad credentials close without
/// a reply (the client then shows its network-error dialog).
async fn list<W: AsyncWrite + Unpin>(
    write: &mut W,
    shared: &Shared,
    conns: &Connections,
    peer: SocketAddr,
    credentials: Credentials,
) -> bool {
    let Some(session) = login(shared, conns, peer, credentials, "list").await else {
        return false;
    };
    let rows = match listing(shared, &session).await {
        Ok(rows) => rows,
        Err(status) => {
            tracing::warn!(%status, "listing failed");
            conns.counters.error("list");
            return false;
        }
    };
    if wire::send_frame(write, &codec::listing(&rows))
        .await
        .is_err()
    {
        return false;
    }
    conns.counters.frame_out("list");
    true
}

/// The top level of the public store, oldest first as the original's table: files by name,
/// folders by path.
async fn listing(shared: &Shared, session: &UserSession) -> Result<Vec<Listed>, Status> {
    let mut entries: Vec<(i64, i64, String, bool)> = Vec::new();
    for entry in list_all(session, String::new(), false).await? {
        match entry {
            list_entry::Entry::File(f) => {
                entries.push((f.created_at_ms, f.owner_id, f.name, false))
            }
            list_entry::Entry::Folder(f) => {
                entries.push((f.created_at_ms, f.owner_id, f.path, true))
            }
        }
    }
    entries.sort_by_key(|e| e.0);
    let mut rows = Vec::new();
    let mut bytes = 0;
    for (at_ms, owner, name, folder) in entries.into_iter().rev() {
        let row = Listed {
            uploader: shared.lobby.name_of(owner, session).await,
            time: local_time(at_ms),
            name,
            folder,
        };
        bytes += codec::python_json(&codec::listing(std::slice::from_ref(&row))).len();
        if bytes > MAX_LISTING_BYTES {
            break;
        }
        rows.push(row);
    }
    rows.reverse();
    Ok(rows)
}

/// `YYYY-MM-DD HH:MM:SS` in the server's local time, as the original stored it.
fn local_time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

async fn list_all(
    session: &UserSession,
    folder: String,
    recursive: bool,
) -> Result<Vec<list_entry::Entry>, Status> {
    all_pages(MAX_PAGES, |page_token| {
        let request = ListFilesRequest {
            scope: ListScope::Public.into(),
            folder: folder.clone(),
            recursive,
            page: Some(PageRequest {
                page_size: PAGE_SIZE,
                page_token,
            }),
        };
        async move {
            let page = session
                .call(request, |backend, request| async move {
                    backend.files().list_files(request).await
                })
                .await?;
            let next = page.page.map(|p| p.next_page_token).unwrap_or_default();
            Ok((
                page.entries.into_iter().filter_map(|e| e.entry).collect(),
                next,
            ))
        }
    })
    .await
}

/// How long an upload of `size` bytes, or a download, may take: the client's socket sets the
/// pace (each socket write has its own deadline, so a stalled client is cut off sooner).
fn transfer_deadline(size: u64) -> Duration {
    // At least 64 KiB/s, and a minute besides.
    Duration::from_secs(60 + size / (64 * 1024)).min(Duration::from_secs(6 * 3600))
}

/// Sends a file, or every file below a folder, then returns (the caller closes). Not found,
/// unsafe names and bad credentials all answer `{"op": 1, "file_name": 400}`.
async fn download<W: AsyncWrite + Unpin>(
    write: &mut W,
    shared: &Shared,
    conns: &Connections,
    peer: SocketAddr,
    credentials: Credentials,
    file_name: &str,
) {
    let files = match login(shared, conns, peer, credentials, "download").await {
        Some(session) => match find(&session, file_name).await {
            Ok(files) if !files.is_empty() => Some((session, files)),
            Ok(_) => None,
            Err(status) => {
                tracing::info!(%status, file_name, "download lookup failed");
                None
            }
        },
        None => None,
    };
    let Some((session, files)) = files else {
        if wire::send_frame(write, &codec::not_found()).await.is_ok() {
            conns.counters.frame_out("download");
        }
        return;
    };
    for (name, in_folder, file) in files {
        if let Err(err) = send_file(write, shared, &session, &name, in_folder, &file.id).await {
            tracing::warn!(%err, name, "download interrupted");
            conns.counters.error("download");
            return;
        }
        conns.counters.frame_out("download");
    }
}

/// What a download of `requested` sends: the newest public file of that path, else every file
/// below the folder of that path (newest version of each), with the name the client writes.
async fn find(
    session: &UserSession,
    requested: &str,
) -> Result<Vec<(String, bool, FileInfo)>, Status> {
    let Some((folder, base)) = split_path(requested) else {
        return Ok(Vec::new());
    };
    let newest_file = list_all(session, folder.clone(), false)
        .await?
        .into_iter()
        .filter_map(|e| match e {
            list_entry::Entry::File(f) if f.name == base => Some(f),
            _ => None,
        })
        .max_by_key(|f| (f.created_at_ms, f.id.clone()));
    if let Some(file) = newest_file {
        return Ok(vec![(requested.to_owned(), false, file)]);
    }
    let path = if folder.is_empty() {
        base
    } else {
        format!("{folder}/{base}")
    };
    let mut newest: HashMap<String, FileInfo> = HashMap::new();
    let mut order = Vec::new();
    for entry in list_all(session, path, true).await? {
        if let list_entry::Entry::File(f) = entry {
            let name = format!("{}/{}", f.folder, f.name);
            match newest.get(&name) {
                Some(old) if old.created_at_ms > f.created_at_ms => {}
                Some(_) => {
                    newest.insert(name, f);
                }
                None => {
                    order.push(name.clone());
                    newest.insert(name, f);
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|name| newest.remove(&name).map(|f| (name, true, f)))
        .collect())
}

/// One header and exactly the file's bytes, streamed chunk by chunk.
async fn send_file<W: AsyncWrite + Unpin>(
    write: &mut W,
    shared: &Shared,
    session: &UserSession,
    name: &str,
    in_folder: bool,
    file_id: &str,
) -> io::Result<()> {
    let grpc = |status: Status| io::Error::other(status.to_string());
    let mut request = session
        .request(DownloadRequest {
            file_id: file_id.to_owned(),
            offset: 0,
        })
        .await
        .map_err(grpc)?;
    // Streamed to the client at its pace: the backend's default deadline would cut a large
    // download to a slow client short. The size is not known yet: the largest allowed.
    request.set_timeout(transfer_deadline(u64::MAX));
    let mut stream = shared
        .backend
        .files()
        .download(request)
        .await
        .map_err(grpc)?
        .into_inner();
    let size = match stream.message().await.map_err(grpc)?.and_then(|m| m.part) {
        Some(download_response::Part::Info(info)) => info.size,
        _ => return Err(io::Error::other("download stream without file info")),
    };
    wire::send_frame(write, &codec::download_header(name, in_folder, size)).await?;
    let mut sent = 0u64;
    while let Some(message) = stream.message().await.map_err(grpc)? {
        if let Some(download_response::Part::Chunk(chunk)) = message.part {
            sent += chunk.len() as u64;
            if sent > size {
                return Err(io::Error::other("download longer than announced"));
            }
            wire::send(write, &chunk).await?;
        }
    }
    if sent != size {
        return Err(io::Error::other("download shorter than announced"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_on_both_separators_and_refuse_escapes() {
        let split = split_path;
        assert_eq!(
            split("notes.txt"),
            Some((String::new(), "notes.txt".into()))
        );
        assert_eq!(
            split("pics\\sub/b.txt"),
            Some(("pics/sub".into(), "b.txt".into()))
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "C:\\x",
            "a/",
            "x\u{7}",
        ] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }
}
