//! `rosetta-bench seed`: bench users written straight into a node's database, so that a soak
//! of 100,000 connections does not first spend hours in registration.
//!
//! BENCH-ONLY. The rows are the ones `AccountService.Register` writes (a `users` row and one
//! argon2id verifier per password form: plain, MD5 hex, SHA-256 hex), but the verifiers use
//! argon2id's smallest parameters instead of the service's (OWASP's 19 MiB, two passes). A PHC
//! string carries its own parameters and the service verifies with those, so seeded users log
//! in cheaply while the server itself is unchanged: every password it hashes still costs
//! what it always did. Never seed a database that real users share.

use std::time::Duration;

use anyhow::{Context as _, bail};
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use md5::Md5;
use rosetta_db::{
    entity::{credential, user},
    now_ms,
    sea_orm::{
        ActiveValue::Set, ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _,
        TransactionTrait as _,
    },
};
use sha2::{Digest as _, Sha256};

use crate::{grpc::PASSWORD, live, report::Report};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The node's database: `sqlite://<data dir>/rosetta.db?mode=rwc` (what `rosetta all`
    /// uses by default) or `postgres://…`. Migrations run first, so a fresh file works.
    #[arg(long)]
    pub database: String,
    /// Users are named `<prefix>-<i>`; `soak --seeded <prefix>` logs them in.
    #[arg(long)]
    pub prefix: String,
    /// How many users to write.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// First index (to add users to an earlier seed with the same prefix).
    #[arg(long, default_value_t = 0)]
    pub start: usize,
    /// Users per transaction (one multi-row insert of users and one of their verifiers).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

/// The seeded user number `i` of `prefix`: its user name.
pub fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

/// Its public handle: ten alphanumerics like a drawn one, but derived from the name so that
/// the soak knows it without asking (OurChat logs in by ocid).
pub fn ocid(prefix: &str, i: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(name(prefix, i).as_bytes());
    digest
        .iter()
        .take(10)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The password forms the service stores a verifier for (`credentials.scheme`: 1 plain,
/// 2 MD5 hex, 3 SHA-256 hex), derived from the plain password as Register derives them.
pub fn password_forms(plain: &str) -> [(i16, String); 3] {
    [
        (1, plain.to_owned()),
        (2, hex::encode(Md5::digest(plain.as_bytes()))),
        (3, hex::encode(Sha256::digest(plain.as_bytes()))),
    ]
}

/// A cheap argon2id verifier (8 KiB, one pass, one lane) in the PHC form the service writes.
pub fn cheap_verifier(secret: &str) -> anyhow::Result<String> {
    let params = Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut salt);
    let mut out = [0u8; 32];
    argon2
        .hash_password_into(secret.as_bytes(), &salt, &mut out)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Writes users `range` of `prefix` in one transaction: the users in one insert, their ids
/// read back by name, then every verifier in a second insert.
async fn write_batch(
    db: &DatabaseConnection,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let now = now_ms();
    let names: Vec<String> = range.clone().map(|i| name(prefix, i)).collect();
    let users = range
        .clone()
        .zip(&names)
        .map(|(i, name)| user::ActiveModel {
            username: Set(name.clone()),
            ocid: Set(ocid(prefix, i)),
            email: Set(None),
            phone: Set(None),
            // What `rosetta-bench` registers with: the name as nickname.
            nickname: Set(name.clone()),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            security_answer_hash: Set(None),
            created_at_ms: Set(now),
            deleted_at_ms: Set(None),
            ..Default::default()
        });
    let tx = db.begin().await?;
    user::Entity::insert_many(users)
        .exec_without_returning(&tx)
        .await
        .with_context(|| {
            format!(
                "insert users {} … {} (already seeded? use another --prefix or --start)",
                names[0],
                names[names.len() - 1]
            )
        })?;
    let ids = user::Entity::find()
        .filter(user::Column::Username.is_in(names.iter().cloned()))
        .all(&tx)
        .await?;
    if ids.len() != names.len() {
        bail!("read back {} of {} seeded users", ids.len(), names.len());
    }
    let forms = password_forms(PASSWORD);
    let mut credentials = Vec::with_capacity(ids.len() * forms.len());
    for u in &ids {
        for (scheme, secret) in &forms {
            credentials.push(credential::ActiveModel {
                user_id: Set(u.id),
                scheme: Set(*scheme),
                verifier: Set(cheap_verifier(secret)?),
                created_at_ms: Set(now),
            });
        }
    }
    credential::Entity::insert_many(credentials)
        .exec_without_returning(&tx)
        .await
        .context("insert verifiers")?;
    tx.commit().await?;
    Ok(())
}

/// Writes `opts.count` users into `db`.
pub async fn seed(db: &DatabaseConnection, opts: &Options, quiet: bool) -> anyhow::Result<Report> {
    if opts.count == 0 || opts.batch == 0 {
        bail!("--count and --batch must be at least 1");
    }
    let bar = live::line(Some(opts.count as u64), quiet);
    bar.set_message("seeding users");
    let started = std::time::Instant::now();
    let end = opts.start + opts.count;
    let mut from = opts.start;
    while from < end {
        let to = (from + opts.batch).min(end);
        write_batch(db, &opts.prefix, from..to).await?;
        bar.inc((to - from) as u64);
        from = to;
    }
    bar.finish_and_clear();
    let took = started.elapsed().max(Duration::from_micros(1));
    let mut report = Report::new("seed", &redact(&opts.database));
    report.param("prefix", opts.prefix.clone());
    report.param("start", opts.start);
    report.param("count", opts.count);
    report.counter("users written", opts.count as f64, "");
    report.counter(
        "write rate",
        opts.count as f64 / took.as_secs_f64(),
        "users/s",
    );
    Ok(report)
}

/// Opens the database (running its migrations) and seeds it.
pub async fn run(opts: &Options, quiet: bool) -> anyhow::Result<Report> {
    let db = rosetta_db::connect(&opts.database)
        .await
        .with_context(|| format!("cannot open {}", redact(&opts.database)))?;
    let report = seed(&db, opts, quiet).await;
    db.close().await.ok();
    report
}

/// The URL without a password (`postgres://user:secret@host` → `postgres://user@host`).
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocids_look_drawn_and_are_stable() {
        let a = ocid("s1", 7);
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a, ocid("s1", 7));
        assert_ne!(a, ocid("s1", 8));
    }

    #[test]
    fn verifiers_are_cheap_argon2id_phc_strings() {
        let phc = cheap_verifier("pw").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert_ne!(phc, cheap_verifier("pw").unwrap(), "fresh salt each time");
        let forms = password_forms("123456");
        assert_eq!(forms[1].1, "e10adc3949ba59abbe56e057f20f883e");
        assert_eq!(forms[2].0, 3);
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact("postgres://postgres:pw@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    /// Seeds a running node's own database, then logs seeded users in through its account
    /// service in every password form, by name and by ocid; an unseeded name is refused.
    async fn seeded_users_log_in(backend: rosetta_testkit::Backend) {
        use rosetta_proto::account::v1::{LoginRequest, PasswordScheme, login_request::Identifier};
        let server = rosetta_testkit::TestServer::start(backend).await;
        let opts = Options {
            database: server.config.database_url(),
            prefix: "sd".into(),
            count: 7,
            start: 0,
            batch: 3,
        };
        seed(&server_db(&opts.database).await, &opts, true)
            .await
            .expect("seeds");
        let mut account = server.account().await;
        let forms = password_forms(PASSWORD);
        let schemes = [
            PasswordScheme::Plain,
            PasswordScheme::Md5Hex,
            PasswordScheme::Sha256Hex,
        ];
        for (i, ((_, password), scheme)) in forms.iter().zip(schemes).enumerate() {
            let identifier = if i == 2 {
                Identifier::Ocid(ocid("sd", 6))
            } else {
                Identifier::Username(name("sd", i * 3))
            };
            let login = account
                .login(LoginRequest {
                    identifier: Some(identifier),
                    password: password.clone(),
                    password_scheme: scheme.into(),
                    client: "seed-test".into(),
                })
                .await
                .unwrap_or_else(|e| panic!("seeded user logs in with {scheme:?}: {e}"));
            assert!(!login.into_inner().access_token.is_empty());
        }
        let unseeded = account
            .login(LoginRequest {
                identifier: Some(Identifier::Username(name("sd", 7))),
                password: PASSWORD.into(),
                password_scheme: PasswordScheme::Plain.into(),
                client: "seed-test".into(),
            })
            .await;
        assert!(unseeded.is_err(), "only the seeded range exists");
        // Seeding the same range again is refused by the unique names, not doubled.
        assert!(
            seed(&server_db(&opts.database).await, &opts, true)
                .await
                .is_err()
        );
        server.stop().await;
    }

    async fn server_db(url: &str) -> DatabaseConnection {
        rosetta_db::connect(url)
            .await
            .expect("opens the node's database")
    }

    rosetta_testkit::both_backends!(seeded_users, super::seeded_users_log_in);
}
