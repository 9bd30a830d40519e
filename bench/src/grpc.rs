//! The gRPC side of the scenarios: channels, bearer-token requests, and the set-up every
//! run needs (fresh users with unique names, friendships, groups).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use rosetta_proto::{
    account::v1::{
        LoginRequest, RegisterRequest, account_service_client::AccountServiceClient,
        login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    social::v1::{
        CreateGroupRequest, RespondFriendRequestRequest, RespondGroupInvitationRequest,
        SendFriendRequestRequest, respond_friend_request_request,
        respond_group_invitation_request::Invitation, social_service_client::SocialServiceClient,
    },
};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// Password of every user the tool registers.
pub const PASSWORD: &str = "bench-password-1";

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// The ten-character public handle (OurChat addresses users by it).
    pub ocid: String,
    pub token: String,
}

/// A name prefix no earlier run used, so runs never collide on user names.
pub fn run_prefix() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    // Short (IMPS names fit 20 characters with the index): 32 bits of milliseconds mixed
    // with the process id.
    let mixed = (now as u64 ^ (u64::from(std::process::id()) << 20)) & 0xffff_ffff;
    format!("b{mixed:08x}")
}

/// Where each service is reached: one URL for `rosetta all`, or one per service when split.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub account: String,
    pub social: String,
    pub messaging: String,
}

impl Endpoints {
    /// The single URL, or each service's.
    pub fn label(&self) -> String {
        if self.account == self.social && self.social == self.messaging {
            self.account.clone()
        } else {
            format!(
                "account={} social={} messaging={}",
                self.account, self.social, self.messaging
            )
        }
    }
}

/// Open channels to each service (shared when services share a URL).
pub struct Services {
    pub account: Vec<Channel>,
    pub social: Vec<Channel>,
    pub messaging: Vec<Channel>,
}

impl Services {
    /// `count` connections per distinct URL.
    pub async fn connect(endpoints: &Endpoints, count: usize) -> anyhow::Result<Services> {
        let mut open: Vec<(String, Vec<Channel>)> = Vec::new();
        let mut get = async |url: &str| -> anyhow::Result<Vec<Channel>> {
            if let Some((_, channels)) = open.iter().find(|(u, _)| u == url) {
                return Ok(channels.clone());
            }
            let channels = connect(url, count).await?;
            open.push((url.to_owned(), channels.clone()));
            Ok(channels)
        };
        Ok(Services {
            account: get(&endpoints.account).await?,
            social: get(&endpoints.social).await?,
            messaging: get(&endpoints.messaging).await?,
        })
    }
}

/// Opens `count` HTTP/2 connections to `url` (calls are spread over them round-robin).
pub async fn connect(url: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let channel = Channel::from_shared(url.to_owned())
            .with_context(|| format!("bad URL {url}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Wraps `message` with the `authorization: Bearer` header.
pub fn authed<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .context("token is not a valid header value")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

pub fn login_request(name: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(name.to_owned())),
        password: PASSWORD.to_owned(),
        client: "rosetta-bench".to_owned(),
        ..Default::default()
    }
}

/// Registers `count` users named `<prefix>-<i>` and, with `login`, logs each in; `concurrency`
/// calls at a time (each registration and login runs argon2id on the server).
pub async fn register_users(
    channels: &[Channel],
    prefix: &str,
    count: usize,
    login: bool,
    concurrency: usize,
) -> anyhow::Result<Vec<User>> {
    stream::iter(0..count)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let name = format!("{prefix}-{i}");
            async move {
                let mut account = AccountServiceClient::new(channel);
                let user = account
                    .register(RegisterRequest {
                        username: name.clone(),
                        password: PASSWORD.to_owned(),
                        nickname: name.clone(),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("register {name}"))?
                    .into_inner()
                    .user
                    .context("register returned no user")?;
                let token = if login {
                    account
                        .login(login_request(&name))
                        .await
                        .with_context(|| format!("login {name}"))?
                        .into_inner()
                        .access_token
                } else {
                    String::new()
                };
                anyhow::Ok(User {
                    id: user.id,
                    name,
                    ocid: user.ocid,
                    token,
                })
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// Makes `a` and `b` friends (request from `a`, accepted by `b`).
pub async fn befriend(channel: &Channel, a: &User, b: &User) -> anyhow::Result<()> {
    let mut social = SocialServiceClient::new(channel.clone());
    social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(b.id)),
                }),
                note: String::new(),
            },
            &a.token,
        )?)
        .await
        .with_context(|| format!("friend request {} -> {}", a.name, b.name))?;
    social
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(respond_friend_request_request::Request::FromUserId(a.id)),
                accept: true,
            },
            &b.token,
        )?)
        .await
        .with_context(|| format!("accept friend request {} -> {}", a.name, b.name))?;
    Ok(())
}

/// Creates a group owned by `owner` with `members`: friends of the owner are added at once,
/// the others are invited and accept. Returns its id.
pub async fn create_group(
    channel: &Channel,
    name: &str,
    owner: &User,
    members: &[User],
) -> anyhow::Result<i64> {
    let mut social = SocialServiceClient::new(channel.clone());
    let group = social
        .create_group(authed(
            CreateGroupRequest {
                name: name.to_owned(),
                member_ids: members.iter().map(|m| m.id).collect(),
                ..Default::default()
            },
            &owner.token,
        )?)
        .await
        .with_context(|| format!("create group {name}"))?
        .into_inner();
    for member in members
        .iter()
        .filter(|m| group.invited_user_ids.contains(&m.id))
    {
        social
            .respond_group_invitation(authed(
                RespondGroupInvitationRequest {
                    invitation: Some(Invitation::GroupId(group.id)),
                    accept: true,
                },
                &member.token,
            )?)
            .await
            .with_context(|| format!("{} joins group {name}", member.name))?;
    }
    Ok(group.id)
}
