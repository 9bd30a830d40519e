//! User names the system uses itself cannot be registered or taken by a rename (issue 18,
//! item 8), and user, nick and group names cannot carry bidirectional controls (item 10).
//! Over real gRPC, on SQLite and on PostgreSQL.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use rosetta_proto::{
    account::v1::{DeleteAccountRequest, RegisterRequest, UpdateProfileRequest},
    social::v1::{CreateGroupRequest, social_service_client::SocialServiceClient},
};
use support::{Backend, TestServer, authed, reason};
use tonic::Code;

fn register(username: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        password: "pw-reserved".into(),
        ..Default::default()
    }
}

/// Every reserved form, refused at registration and at rename as a taken name.
async fn reserved_forms_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let victim = server.user("victim", "pw-victim").await;
    let victim_id = victim.user.as_ref().unwrap().id;
    let renamer = server.user("renamer", "pw-renamer").await;
    let tombstone = format!("deleted-{victim_id}");
    let alias = format!("#{victim_id}");
    for name in [
        tombstone.as_str(),
        "deleted-999999",
        "Deleted-1",
        alias.as_str(),
        "#153",
        "#",
        "system",
        "SYSTEM",
        "admin",
        "Rosetta",
        "root",
    ] {
        let err = account.register(register(name)).await.unwrap_err();
        assert_eq!(
            (err.code(), reason(&err)),
            (Code::AlreadyExists, Reason::UsernameTaken),
            "register {name:?}"
        );
        assert!(err.message().contains("reserved"), "{name:?}: {err:?}");
        let err = account
            .update_profile(authed(
                UpdateProfileRequest {
                    username: Some(name.into()),
                    ..Default::default()
                },
                &renamer.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Reason::UsernameTaken, "rename to {name:?}");
    }
    // Names merely resembling the forms stay available.
    for name in ["deleted", "c#", "systems", "admin2", "root-beer"] {
        account.register(register(name)).await.expect(name);
    }
    // So the victim's deletion still works: nobody could take its tombstone name.
    account
        .delete_account(authed(
            DeleteAccountRequest {
                password: "pw-victim".into(),
                ..Default::default()
            },
            &victim.access_token,
        ))
        .await
        .expect("delete account");
    server.stop().await;
}
both_backends!(
    reserved_forms_are_refused,
    super::reserved_forms_are_refused
);

/// U+202E and friends reorder what others see ("txt.exe" shown as "exe.txt").
const BIDI: [char; 12] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
];

async fn bidi_controls_are_refused_in_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let mut social = SocialServiceClient::new(server.channel().await);
    let user = server.user("plain", "pw-plain").await;
    for c in BIDI {
        let name = format!("ad{c}min");
        let err = account.register(register(&name)).await.unwrap_err();
        assert_eq!(
            (err.code(), reason(&err)),
            (Code::InvalidArgument, Reason::InvalidArgument),
            "user name with U+{:04X}",
            c as u32
        );
        let mut with_nick = register(&format!("nick{:04x}", c as u32));
        with_nick.nickname = format!("evil{c}gpj.exe");
        let err = account.register(with_nick).await.unwrap_err();
        assert_eq!(
            reason(&err),
            Reason::InvalidArgument,
            "nickname at registration"
        );
        let err = account
            .update_profile(authed(
                UpdateProfileRequest {
                    nickname: Some(format!("evil{c}gpj.exe")),
                    ..Default::default()
                },
                &user.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Reason::InvalidArgument, "nickname update");
        let err = account
            .update_profile(authed(
                UpdateProfileRequest {
                    username: Some(name.clone()),
                    ..Default::default()
                },
                &user.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Reason::InvalidArgument, "rename");
        let err = social
            .create_group(authed(
                CreateGroupRequest {
                    name: format!("group{c}"),
                    ..Default::default()
                },
                &user.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), reason(&err)),
            (Code::InvalidArgument, Reason::InvalidArgument),
            "group name"
        );
    }
    server.stop().await;
}
both_backends!(
    bidi_controls_are_refused_in_names,
    super::bidi_controls_are_refused_in_names
);
