//! File and folder names that Windows clients would turn into devices or streams, or that
//! reorder what other users see, are refused over gRPC (issue 18, item 10). On SQLite and on
//! PostgreSQL.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use futures::{StreamExt as _, stream};
use rosetta_proto::files::v1::{
    FileInfo, ListFilesRequest, UploadMetadata, UploadRequest,
    files_service_client::FilesServiceClient, upload_request::Part,
};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, Status, transport::Channel};

async fn put(
    files: &mut FilesServiceClient<Channel>,
    token: &str,
    name: &str,
    folder: &str,
) -> Result<FileInfo, Status> {
    let metadata = UploadMetadata {
        name: name.into(),
        size: 1,
        content_type: "text/plain".into(),
        folder: folder.into(),
        ..Default::default()
    };
    let parts = stream::iter([
        UploadRequest {
            part: Some(Part::Metadata(metadata)),
        },
        UploadRequest {
            part: Some(Part::Chunk(b"z".to_vec())),
        },
    ]);
    files
        .upload(authed(parts.boxed(), token))
        .await
        .map(|r| r.into_inner())
}

fn assert_refused(result: Result<FileInfo, Status>, what: &str, says: &str) {
    let err = result.expect_err(what);
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::InvalidArgument, Reason::BadName),
        "{what}"
    );
    assert!(
        err.message().contains(says),
        "{what}: message {:?} should mention {says:?}",
        err.message()
    );
}

async fn windows_and_bidi_names_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.user("uploader", "pw-uploader").await.access_token;
    let mut files = FilesServiceClient::new(server.channel().await);

    let devices = [
        "CON",
        "con",
        "PRN",
        "AUX",
        "NUL",
        "nul.txt",
        "Com1",
        "COM9.log",
        "lpt1",
        "LPT9.tar.gz",
        "CON .txt",
        "aux.",
        "COM\u{b9}",
    ];
    for name in devices {
        assert_refused(
            put(&mut files, &token, name, "").await,
            &format!("file {name:?}"),
            "reserved",
        );
        assert_refused(
            put(&mut files, &token, "ok.txt", &format!("docs/{name}")).await,
            &format!("folder part {name:?}"),
            "reserved",
        );
    }
    for name in ["a:b", "file.txt:hidden", "x:$DATA"] {
        assert_refused(
            put(&mut files, &token, name, "").await,
            &format!("file {name:?}"),
            "':'",
        );
        assert_refused(
            put(&mut files, &token, "ok.txt", &format!("docs/{name}")).await,
            &format!("folder part {name:?}"),
            "':'",
        );
    }
    for c in [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ] {
        let name = format!("invoice{c}fdp.exe");
        assert_refused(
            put(&mut files, &token, &name, "").await,
            &format!("file with U+{:04X}", c as u32),
            "bidirectional",
        );
        assert_refused(
            put(&mut files, &token, "ok.txt", &format!("a{c}b")).await,
            &format!("folder with U+{:04X}", c as u32),
            "bidirectional",
        );
    }
    let listing = files
        .list_files(authed(
            ListFilesRequest {
                folder: "CON".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&listing), Reason::BadName);

    // Look-alikes of the device names are ordinary names.
    for name in [
        "console.txt",
        "CON1",
        "COM10",
        "nullable",
        "aux-notes.md",
        "LPT",
    ] {
        put(&mut files, &token, name, "")
            .await
            .unwrap_or_else(|e| panic!("{name:?} is an ordinary name: {e:?}"));
    }
    put(&mut files, &token, "ok.txt", "COMPANY/contracts")
        .await
        .expect("ordinary folder");
    server.stop().await;
}
both_backends!(
    windows_and_bidi_names_are_refused,
    super::windows_and_bidi_names_are_refused
);
