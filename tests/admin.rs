//! The admin API (issue 23) over real gRPC, on SQLite and on PostgreSQL: only the admin role
//! opens it (granted by the library function `rosetta admin grant` uses), every call is
//! audited, and what operators do to accounts takes effect: sessions end, a recovery code
//! works once, disabled and deleted accounts cannot log in. `admin_bridges.rs` checks the
//! legacy protocols.

use std::collections::BTreeSet;

use prost::Message as _;
use rosetta_proto::{
    Reason,
    account::v1::{
        GetMyProfileRequest, LoginRequest, LoginResponse, PasswordScheme, RecoverPasswordRequest,
        RegisterRequest, login_request::Identifier, recover_password_request::Proof,
    },
    admin::v1::{
        AnnounceRequest, DeleteUserRequest, DisableUserRequest, EnableUserRequest,
        ForceLogoutRequest, GetStatusRequest, GetUserRequest, ListAuditLogRequest,
        ListUsersRequest, ResetPasswordRequest, SetMaintenanceRequest,
        admin_service_client::AdminServiceClient,
    },
    common::v1::{PageRequest, UserRef, user_ref::Ref},
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, reason};
use tonic::{Code, Status, transport::Channel};

type Admin = AdminServiceClient<Channel>;

fn by_id(id: i64) -> Option<UserRef> {
    Some(UserRef {
        r#ref: Some(Ref::Id(id)),
    })
}

fn login(name: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(name.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

async fn revoke(server: &TestServer, name: &str) {
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("the test reaches the node's database");
    rosetta_account::admin::revoke(&db, name)
        .await
        .expect("revoke");
}

/// The methods of `rosetta.admin.v1.AdminService`, from the descriptor the server publishes.
fn admin_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(rosetta_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "rosetta.admin.v1")
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == "AdminService")
        .flat_map(|s| &s.method)
        .map(|m| m.name().to_owned())
        .collect()
}

/// Calls every admin RPC with `token`, each acting on `target`; the outcome per method name.
async fn every_rpc(
    admin: &mut Admin,
    token: &str,
    target: i64,
) -> Vec<(&'static str, Result<(), Status>)> {
    let user = by_id(target);
    vec![
        (
            "ListUsers",
            admin
                .list_users(authed(ListUsersRequest::default(), token))
                .await
                .map(drop),
        ),
        (
            "GetUser",
            admin
                .get_user(authed(GetUserRequest { user: user.clone() }, token))
                .await
                .map(drop),
        ),
        (
            "DisableUser",
            admin
                .disable_user(authed(
                    DisableUserRequest {
                        user: user.clone(),
                        note: "test".into(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "EnableUser",
            admin
                .enable_user(authed(
                    EnableUserRequest {
                        user: user.clone(),
                        note: String::new(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "ForceLogout",
            admin
                .force_logout(authed(
                    ForceLogoutRequest {
                        user: user.clone(),
                        session_id: String::new(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "ResetPassword",
            admin
                .reset_password(authed(ResetPasswordRequest { user: user.clone() }, token))
                .await
                .map(drop),
        ),
        (
            "DeleteUser",
            admin
                .delete_user(authed(DeleteUserRequest { user }, token))
                .await
                .map(drop),
        ),
        (
            "ListAuditLog",
            admin
                .list_audit_log(authed(ListAuditLogRequest::default(), token))
                .await
                .map(drop),
        ),
        (
            "GetStatus",
            admin
                .get_status(authed(GetStatusRequest {}, token))
                .await
                .map(drop),
        ),
        (
            // Off: the switch is set (and audited) without refusing the test's later logins.
            "SetMaintenance",
            admin
                .set_maintenance(authed(
                    SetMaintenanceRequest {
                        enabled: false,
                        message: String::new(),
                        drain: false,
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "Announce",
            admin
                .announce(authed(
                    AnnounceRequest {
                        text: "test".into(),
                        lifetime_secs: 60,
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
    ]
}

/// The audit log's entries (newest first), walked page by page with `page_size`.
async fn audit_log(
    admin: &mut Admin,
    token: &str,
    target_user_id: i64,
    page_size: u32,
) -> Vec<rosetta_proto::admin::v1::AuditEntry> {
    let (mut entries, mut page_token) = (Vec::new(), String::new());
    loop {
        let reply = admin
            .list_audit_log(authed(
                ListAuditLogRequest {
                    target_user_id,
                    page: Some(PageRequest {
                        page_size,
                        page_token,
                    }),
                },
                token,
            ))
            .await
            .expect("audit log")
            .into_inner();
        entries.extend(reply.entries);
        page_token = reply.page.unwrap_or_default().next_page_token;
        if page_token.is_empty() {
            return entries;
        }
    }
}

async fn only_admins_pass(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let opal = server.user("opal", "opal-pw").await;
    server.grant_admin("opal").await;
    let eve = server.user("eve", "eve-pw").await;
    let victim = server.user("victim", "victim-pw").await;
    let victim_id = victim.user.as_ref().unwrap().id;

    // Every method the service publishes is tried.
    let outcomes = every_rpc(&mut admin, &eve.access_token, victim_id).await;
    let tried: BTreeSet<String> = outcomes.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(tried, admin_methods(), "every admin RPC is tried");
    for (method, outcome) in &outcomes {
        let err = outcome.as_ref().expect_err(method);
        assert_eq!(
            (err.code(), reason(err)),
            (Code::PermissionDenied, Reason::AdminRoleRequired),
            "{method}"
        );
    }
    // Nothing happened to the victim.
    server
        .account()
        .await
        .get_my_profile(authed(GetMyProfileRequest {}, &victim.access_token))
        .await
        .expect("the victim's session is untouched");
    // Without a token the auth layer refuses before the service.
    let err = admin
        .list_users(ListUsersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);

    // Granted, the same token passes every RPC; revoked, it is refused again.
    server.grant_admin("eve").await;
    for (method, outcome) in every_rpc(&mut admin, &eve.access_token, victim_id).await {
        outcome.unwrap_or_else(|err| panic!("{method} as an admin: {err:?}"));
    }
    revoke(&server, "eve").await;
    for (method, outcome) in every_rpc(&mut admin, &eve.access_token, victim_id).await {
        let err = outcome.expect_err(method);
        assert_eq!(reason(&err), Reason::AdminRoleRequired, "{method}");
    }

    // The log has the grants, eve's call of each RPC and the revoke; eve's refused calls are not
    // stored (a caller without the role cannot grow the log).
    let entries = audit_log(&mut admin, &opal.access_token, 0, 3).await;
    let eve_id = eve.user.as_ref().unwrap().id;
    let by_eve: BTreeSet<String> = entries
        .iter()
        .filter(|e| e.actor_user_id == eve_id)
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(by_eve, admin_methods());
    assert_eq!(
        entries.iter().filter(|e| e.actor_user_id == eve_id).count(),
        admin_methods().len()
    );
    assert!(entries.iter().all(|e| e.outcome == "OK"), "{entries:?}");
    let cli: Vec<(&str, i64)> = entries
        .iter()
        .filter(|e| e.actor == "cli")
        .map(|e| (e.action.as_str(), e.target_user_id))
        .collect();
    assert_eq!(
        cli,
        vec![
            ("Revoke", eve_id),
            ("Grant", eve_id),
            ("Grant", opal.user.as_ref().unwrap().id)
        ]
    );
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    server.stop().await;
}
both_backends!(only_admins_pass, super::only_admins_pass);

/// A second login of `name`, as another device.
async fn device(server: &TestServer, name: &str, password: &str) -> LoginResponse {
    server
        .account()
        .await
        .login(login(name, password))
        .await
        .expect("login")
        .into_inner()
}

async fn revoked(server: &TestServer, session: &LoginResponse) -> bool {
    match server
        .account()
        .await
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
    {
        Ok(_) => false,
        Err(err) => {
            assert_eq!(reason(&err), Reason::SessionRevoked, "{err:?}");
            true
        }
    }
}

async fn operators_act_on_accounts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let opal = server.user("opal", "opal-pw").await;
    server.grant_admin("opal").await;
    let token = opal.access_token.as_str();
    let first = server.user("bob", "bob-pw").await;
    let second = device(&server, "bob", "bob-pw").await;
    let bob = first.user.as_ref().unwrap().clone();

    // The operator's view of bob: profile, handles, both sessions.
    let details = admin
        .get_user(authed(
            GetUserRequest {
                user: by_id(bob.id),
            },
            token,
        ))
        .await
        .expect("get user")
        .into_inner();
    let summary = details.summary.as_ref().unwrap();
    assert_eq!(summary.user.as_ref().unwrap().username, "bob");
    assert_eq!((summary.live_sessions, summary.admin), (2, false));
    assert!(summary.last_seen_ms > 0);
    let handles: Vec<(&str, &str)> = details
        .handles
        .iter()
        .map(|h| (h.protocol.as_str(), h.handle.as_str()))
        .collect();
    assert!(
        handles.contains(&("ourchat", bob.ocid.as_str())),
        "{handles:?}"
    );
    assert!(handles.contains(&("pipe", bob.id.to_string().as_str())));
    let mut sessions: Vec<&str> = details.sessions.iter().map(|s| s.id.as_str()).collect();
    sessions.sort_unstable();
    let mut expected = vec![first.session_id.as_str(), second.session_id.as_str()];
    expected.sort_unstable();
    assert_eq!(sessions, expected);
    assert!(details.sessions.iter().all(|s| s.protocol == "grpc"));

    // Force logout of one session, then of all.
    let one = admin
        .force_logout(authed(
            ForceLogoutRequest {
                user: by_id(bob.id),
                session_id: first.session_id.clone(),
            },
            token,
        ))
        .await
        .expect("force logout")
        .into_inner();
    assert_eq!(one.sessions_ended, 1);
    assert!(revoked(&server, &first).await);
    assert!(!revoked(&server, &second).await);
    let all = admin
        .force_logout(authed(
            ForceLogoutRequest {
                user: by_id(bob.id),
                session_id: String::new(),
            },
            token,
        ))
        .await
        .expect("force logout all")
        .into_inner();
    assert_eq!(all.sessions_ended, 1);
    assert!(revoked(&server, &second).await);

    // A recovery code: the password is unchanged until the user redeems it, once.
    let code = admin
        .reset_password(authed(
            ResetPasswordRequest {
                user: by_id(bob.id),
            },
            token,
        ))
        .await
        .expect("reset password")
        .into_inner();
    assert_eq!(code.code.len(), 12);
    let mut account = server.account().await;
    account
        .login(login("bob", "bob-pw"))
        .await
        .expect("the old password works until the code is used");
    let recover = |password: &str| RecoverPasswordRequest {
        user: by_id(bob.id),
        proof: Some(Proof::VerificationCode(code.code.to_lowercase())),
        new_password: password.into(),
        new_scheme: PasswordScheme::Plain.into(),
    };
    account
        .recover_password(recover("bob-new"))
        .await
        .expect("the code sets a new password");
    account
        .login(login("bob", "bob-new"))
        .await
        .expect("the new password works");
    let again = account
        .recover_password(recover("bob-third"))
        .await
        .expect_err("a code works once");
    assert_eq!(reason(&again), Reason::BadProof);
    let old = account
        .login(login("bob", "bob-pw"))
        .await
        .expect_err("old");
    assert_eq!(reason(&old), Reason::BadCredentials);

    // Disabled: the right password is refused with the typed reason; enabled again, it works.
    let live = device(&server, "bob", "bob-new").await;
    admin
        .disable_user(authed(
            DisableUserRequest {
                user: by_id(bob.id),
                note: "abuse report 7".into(),
            },
            token,
        ))
        .await
        .expect("disable");
    assert!(revoked(&server, &live).await);
    let refused = account
        .login(login("bob", "bob-new"))
        .await
        .expect_err("disabled");
    assert_eq!(
        (refused.code(), reason(&refused)),
        (Code::PermissionDenied, Reason::AccountDisabled)
    );
    let wrong = account
        .login(login("bob", "nope"))
        .await
        .expect_err("wrong");
    assert_eq!(
        reason(&wrong),
        Reason::BadCredentials,
        "no state for a wrong password"
    );
    let listed = admin
        .list_users(authed(
            ListUsersRequest {
                query: "BO".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.users.len(), 1);
    assert!(listed.users[0].disabled_at_ms > 0);
    admin
        .enable_user(authed(
            EnableUserRequest {
                user: by_id(bob.id),
                note: String::new(),
            },
            token,
        ))
        .await
        .expect("enable");
    let live = device(&server, "bob", "bob-new").await;

    // An admin cannot shut themselves out.
    let opal_id = opal.user.as_ref().unwrap().id;
    for err in [
        admin
            .disable_user(authed(
                DisableUserRequest {
                    user: by_id(opal_id),
                    note: String::new(),
                },
                token,
            ))
            .await
            .expect_err("self-disable"),
        admin
            .delete_user(authed(
                DeleteUserRequest {
                    user: by_id(opal_id),
                },
                token,
            ))
            .await
            .expect_err("self-delete"),
    ] {
        assert_eq!(
            (err.code(), reason(&err)),
            (Code::FailedPrecondition, Reason::NotAllowed)
        );
    }

    // Deleted: sessions end, the login is refused, the name is free, the row stays.
    admin
        .delete_user(authed(
            DeleteUserRequest {
                user: by_id(bob.id),
            },
            token,
        ))
        .await
        .expect("delete");
    assert!(revoked(&server, &live).await);
    let gone = account
        .login(login("bob", "bob-new"))
        .await
        .expect_err("deleted");
    assert_eq!(reason(&gone), Reason::BadCredentials);
    let shown = admin
        .get_user(authed(
            GetUserRequest {
                user: by_id(bob.id),
            },
            token,
        ))
        .await
        .expect("a deleted account is found by id")
        .into_inner();
    let shown = shown.summary.unwrap();
    assert!(shown.deleted_at_ms > 0);
    assert_eq!(shown.user.unwrap().username, format!("deleted-{}", bob.id));
    let listed = admin
        .list_users(authed(
            ListUsersRequest {
                include_deleted: true,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.users.iter().any(|u| u.deleted_at_ms > 0));
    account
        .register(RegisterRequest {
            username: "bob".into(),
            password: "another-bob".into(),
            ..Default::default()
        })
        .await
        .expect("the name is free again");

    // A failed call is audited with its reason; every action on bob is listed, newest first.
    let missing = admin
        .reset_password(authed(
            ResetPasswordRequest {
                user: by_id(999_999),
            },
            token,
        ))
        .await
        .expect_err("nobody");
    assert_eq!(missing.code(), Code::NotFound);
    let about_bob: Vec<String> = audit_log(&mut admin, token, bob.id, 2)
        .await
        .into_iter()
        .map(|e| {
            assert_eq!(e.actor, "opal");
            assert!(!e.details.contains(&code.code), "the code is never logged");
            e.action
        })
        .collect();
    assert_eq!(
        about_bob,
        [
            "GetUser",
            "DeleteUser",
            "EnableUser",
            "DisableUser",
            "ResetPassword",
            "ForceLogout",
            "ForceLogout",
            "GetUser"
        ]
    );
    let newest = audit_log(&mut admin, token, 0, 1).await;
    assert!(
        newest
            .iter()
            .any(|e| e.action == "ResetPassword" && e.outcome == "NOT_FOUND"),
        "{newest:?}"
    );
    server.stop().await;
}
both_backends!(operators_act_on_accounts, super::operators_act_on_accounts);
