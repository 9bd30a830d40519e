//! `rosetta admin …`: the operator's command line. `grant` and `revoke` write the admin role
//! straight to this node's database (the API never grants it); every other subcommand is a
//! thin client of `rosetta.admin.v1.AdminService`, printing one JSON object per line.

mod announce;
mod ops;
mod users;

use std::time::Duration;

use clap::{Args, Subcommand};
use rosetta_node::Config;
use rosetta_proto::{
    admin::v1::{AuditEntry, ListAuditLogRequest, admin_service_client::AdminServiceClient},
    common::v1::{PageRequest, UserRef, user_ref::Ref},
};
use serde_json::{Value, json};
use tonic::{Request, transport::Channel};

/// Longest wait for the server to answer one call.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Longest wait to connect.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Rows asked for per page when a subcommand walks every page.
const PAGE_SIZE: u32 = 500;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Gives the admin role to an account (by id or user name), in this node's database
    /// (`--database-url` / `--data-dir`, as for `rosetta all`). Audited as "cli".
    Grant { user: String },
    /// Takes the admin role from an account, in this node's database.
    Revoke { user: String },
    /// Lists accounts, one JSON object per line (every page).
    ListUsers {
        /// Substring of user name, nickname or e-mail, or an exact id.
        #[arg(long, default_value = "")]
        query: String,
        /// Also list deleted accounts.
        #[arg(long)]
        include_deleted: bool,
        #[command(flatten)]
        api: Api,
    },
    /// Shows one account: profile, role, state, handles, live sessions.
    ShowUser {
        user: String,
        #[command(flatten)]
        api: Api,
    },
    /// Disables an account: its logins are refused and its sessions end at once.
    Disable {
        user: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        api: Api,
    },
    /// Enables a disabled account.
    Enable {
        user: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        api: Api,
    },
    /// Ends one session of an account (`--session`) or all of them.
    Logout {
        user: String,
        #[arg(long, default_value = "")]
        session: String,
        #[command(flatten)]
        api: Api,
    },
    /// Issues a one-time recovery code; the user sets a new password with it (RecoverPassword).
    ResetPassword {
        user: String,
        #[command(flatten)]
        api: Api,
    },
    /// Deletes an account (not undoable).
    Delete {
        user: String,
        #[command(flatten)]
        api: Api,
    },
    /// Every role and bridge instance (version, uptime, connections, online users), the
    /// load per protocol and the maintenance state.
    Status {
        #[command(flatten)]
        api: Api,
    },
    /// Maintenance mode: `on` refuses new logins of non-admins (each protocol's "server busy"
    /// reply), `off` takes them again.
    Maintenance {
        #[arg(value_enum)]
        switch: ops::Switch,
        /// A message for the users, e.g. when the work ends.
        #[arg(long, default_value = "")]
        message: String,
        /// With `on`: also end every live session of non-admins now.
        #[arg(long)]
        drain: bool,
        #[command(flatten)]
        api: Api,
    },
    /// Sends an announcement to every user on every protocol: shown at once to everyone
    /// online, and once to each user who logs in later within its lifetime.
    Announce {
        /// The text (at most 2,000 characters; line breaks allowed).
        text: String,
        /// How long users who log in later still get it, in seconds (60 to 2,592,000);
        /// 0 for one day.
        #[arg(long, default_value_t = 0)]
        lifetime_secs: i64,
        #[command(flatten)]
        api: Api,
    },
    /// The audit log, newest first.
    Audit {
        /// Only entries about this user id.
        #[arg(long, default_value_t = 0)]
        user_id: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        api: Api,
    },
}

/// Where the admin API is and whose token calls it.
#[derive(Args)]
pub struct Api {
    /// The account service's gRPC endpoint.
    #[arg(
        long,
        env = "ROSETTA_ADMIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// An access token of an account with the admin role (from Login).
    #[arg(long, env = "ROSETTA_TOKEN", hide_env_values = true)]
    token: String,
}

impl Api {
    async fn client(&self) -> anyhow::Result<AdminServiceClient<Channel>> {
        let channel = Channel::from_shared(self.server.clone())?
            .connect_timeout(CONNECT_DEADLINE)
            .timeout(CALL_DEADLINE)
            .connect()
            .await?;
        Ok(AdminServiceClient::new(channel))
    }

    fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request.set_timeout(CALL_DEADLINE);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }
}

/// A user named on the command line: a number is an id, a text with `@` an e-mail address,
/// anything else a user name.
pub fn user_ref(text: &str) -> UserRef {
    let text = text.trim();
    let r = match text.parse::<i64>() {
        Ok(id) => Ref::Id(id),
        Err(_) if text.contains('@') => Ref::Email(text.to_owned()),
        Err(_) => Ref::Username(text.to_owned()),
    };
    UserRef { r#ref: Some(r) }
}

pub async fn run(command: AdminCommand, config: &Config) -> anyhow::Result<()> {
    use AdminCommand as C;
    match command {
        C::Grant { user } => {
            let db = rosetta_db::connect(&config.database_url()).await?;
            let id = rosetta_account::admin::grant(&db, &user).await?;
            println!("{}", json!({"granted": id}));
        }
        C::Revoke { user } => {
            let db = rosetta_db::connect(&config.database_url()).await?;
            let id = rosetta_account::admin::revoke(&db, &user).await?;
            println!("{}", json!({"revoked": id}));
        }
        C::ListUsers {
            query,
            include_deleted,
            api,
        } => users::list(&api, query, include_deleted).await?,
        C::ShowUser { user, api } => users::show(&api, &user).await?,
        C::Disable { user, note, api } => users::disable(&api, &user, note).await?,
        C::Enable { user, note, api } => users::enable(&api, &user, note).await?,
        C::Logout { user, session, api } => users::logout(&api, &user, session).await?,
        C::ResetPassword { user, api } => users::reset_password(&api, &user).await?,
        C::Delete { user, api } => users::delete(&api, &user).await?,
        C::Announce {
            text,
            lifetime_secs,
            api,
        } => announce::run(&api, text, lifetime_secs).await?,
        C::Audit {
            user_id,
            limit,
            api,
        } => audit(&api, user_id, limit).await?,
        C::Status { api } => ops::status(&api).await?,
        C::Maintenance {
            switch,
            message,
            drain,
            api,
        } => ops::maintenance(&api, switch, message, drain).await?,
    }
    Ok(())
}

async fn audit(api: &Api, target_user_id: i64, limit: usize) -> anyhow::Result<()> {
    let mut client = api.client().await?;
    let (mut page_token, mut printed) = (String::new(), 0);
    while printed < limit {
        let request = api.request(ListAuditLogRequest {
            target_user_id,
            page: Some(PageRequest {
                page_size: u32::try_from(limit - printed)
                    .unwrap_or(PAGE_SIZE)
                    .min(PAGE_SIZE),
                page_token,
            }),
        })?;
        let reply = client.list_audit_log(request).await?.into_inner();
        for entry in &reply.entries {
            println!("{}", entry_json(entry));
        }
        printed += reply.entries.len();
        page_token = reply.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            break;
        }
    }
    Ok(())
}

fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at_ms": e.at_ms,
        "actor_user_id": e.actor_user_id,
        "actor": e.actor,
        "action": e.action,
        "target_user_id": e.target_user_id,
        "details": e.details,
        "outcome": e.outcome,
    })
}
