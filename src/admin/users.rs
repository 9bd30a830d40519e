//! `rosetta admin` subcommands that act on users: list, show, disable, enable, log out, reset
//! the password, delete. Each prints one JSON object per line.

use rosetta_proto::{
    admin::v1::{
        DeleteUserRequest, DisableUserRequest, EnableUserRequest, ForceLogoutRequest,
        GetUserRequest, ListUsersRequest, ResetPasswordRequest, UserDetails, UserSummary,
    },
    common::v1::PageRequest,
};
use serde_json::{Value, json};

use super::{Api, PAGE_SIZE, user_ref};

/// Every user matching `query`, page by page.
pub async fn list(api: &Api, query: String, include_deleted: bool) -> anyhow::Result<()> {
    let mut client = api.client().await?;
    let mut page_token = String::new();
    loop {
        let request = api.request(ListUsersRequest {
            query: query.clone(),
            include_deleted,
            page: Some(PageRequest {
                page_size: PAGE_SIZE,
                page_token,
            }),
        })?;
        let reply = client.list_users(request).await?.into_inner();
        for user in &reply.users {
            println!("{}", summary_json(user));
        }
        page_token = reply.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return Ok(());
        }
    }
}

/// One user: profile, role, state, handles per protocol, live sessions.
pub async fn show(api: &Api, user: &str) -> anyhow::Result<()> {
    let request = api.request(GetUserRequest {
        user: Some(user_ref(user)),
    })?;
    let details = api.client().await?.get_user(request).await?.into_inner();
    println!("{}", details_json(&details));
    Ok(())
}

/// Refuses the user's logins everywhere and ends their sessions.
pub async fn disable(api: &Api, user: &str, note: String) -> anyhow::Result<()> {
    let request = api.request(DisableUserRequest {
        user: Some(user_ref(user)),
        note,
    })?;
    let reply = api
        .client()
        .await?
        .disable_user(request)
        .await?
        .into_inner();
    println!(
        "{}",
        json!({"disabled": user, "sessions_ended": reply.sessions_ended})
    );
    Ok(())
}

/// Lets a disabled user log in again.
pub async fn enable(api: &Api, user: &str, note: String) -> anyhow::Result<()> {
    let request = api.request(EnableUserRequest {
        user: Some(user_ref(user)),
        note,
    })?;
    api.client().await?.enable_user(request).await?;
    println!("{}", json!({"enabled": user}));
    Ok(())
}

/// Ends one session of the user, or all of them (`session` empty).
pub async fn logout(api: &Api, user: &str, session: String) -> anyhow::Result<()> {
    let request = api.request(ForceLogoutRequest {
        user: Some(user_ref(user)),
        session_id: session,
    })?;
    let reply = api
        .client()
        .await?
        .force_logout(request)
        .await?
        .into_inner();
    println!(
        "{}",
        json!({"user": user, "sessions_ended": reply.sessions_ended})
    );
    Ok(())
}

/// Issues a one-time recovery code.
pub async fn reset_password(api: &Api, user: &str) -> anyhow::Result<()> {
    let request = api.request(ResetPasswordRequest {
        user: Some(user_ref(user)),
    })?;
    let reply = api
        .client()
        .await?
        .reset_password(request)
        .await?
        .into_inner();
    println!(
        "{}",
        json!({"user": user, "code": reply.code, "expires_at_ms": reply.expires_at_ms})
    );
    Ok(())
}

/// Deletes the account (the user's own DeleteAccount clean-up).
pub async fn delete(api: &Api, user: &str) -> anyhow::Result<()> {
    let request = api.request(DeleteUserRequest {
        user: Some(user_ref(user)),
    })?;
    api.client().await?.delete_user(request).await?;
    println!("{}", json!({"deleted": user}));
    Ok(())
}

fn summary_json(s: &UserSummary) -> Value {
    let user = s.user.clone().unwrap_or_default();
    json!({
        "id": user.id,
        "username": user.username,
        "ocid": user.ocid,
        "nickname": user.nickname,
        "email": user.email,
        "phone": user.phone,
        "created_at_ms": user.created_at_ms,
        "admin": s.admin,
        "disabled_at_ms": s.disabled_at_ms,
        "deleted_at_ms": s.deleted_at_ms,
        "live_sessions": s.live_sessions,
        "last_seen_ms": s.last_seen_ms,
    })
}

fn details_json(d: &UserDetails) -> Value {
    let mut value = summary_json(&d.summary.clone().unwrap_or_default());
    value["handles"] = d
        .handles
        .iter()
        .map(|h| (h.protocol.clone(), Value::from(h.handle.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    value["sessions"] = d
        .sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "protocol": s.protocol,
                "client": s.client,
                "created_at_ms": s.created_at_ms,
                "last_used_at_ms": s.last_used_at_ms,
                "refresh_expires_at_ms": s.refresh_expires_at_ms,
            })
        })
        .collect();
    value
}
