//! DPC (three Python socket servers, MySQL `mydage` plus the file server's directory):
//! section 4 of `shared/legacy-schemas.md`. Chat was never stored, so users and files are all
//! there is.
//!
//! Users: `user` is read by column name (no id column is known; the columns are looked up in
//! `information_schema`). DPC users have no visible numeric id, so each new account gets the
//! next free Rosetta id; a rerun recognises an account by its user name plus a password
//! verifier that matches the legacy MD5 hex. The MD5 hex the server computed from the UTF-8
//! plaintext becomes the account service's `MD5_HEX` verifier: the DPC bridge logs in with
//! the plaintext (`PLAIN`), which the service checks by hashing it to MD5 hex first, and the
//! first such login adds the other forms. The phone is kept (the SMS code proved it), the
//! e-mail unverified; either is left empty when it is malformed or another account has it.
//!
//! Files: `file` is read by ordinal (name, uploader, local time text, kind '文件'/'文件夹')
//! and matched against the bytes under `--files-dir`. Each file becomes a files-service file
//! exactly as the service's upload writes one: a server-generated id and object key, the
//! size and SHA-256 of the bytes, public visibility (DPC had one pool shared by everyone).
//! A folder row becomes every file below that directory, with the folder path as their
//! folder (the files service has folders only through their files). Names are checked like
//! the files service checks them, and every path must resolve inside the files directory.
//! Rows without bytes, duplicate rows for a name (the bytes on disk are the last upload's),
//! and files on disk without a row (the server's scripts, uploads whose row insert failed)
//! are skipped with a reason. A rerun finds a file by owner, folder, name, size and SHA-256.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context as _;
use argon2::{Algorithm, Argon2, PasswordVerifier as _, Version, password_hash::phc::PasswordHash};
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart, path::Path as ObjectKey};
use rosetta_account::Scheme;
use rosetta_db::entity::{credential, files::file, user};
use rosetta_proto::files::v1::Visibility;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DatabaseConnection, DatabaseTransaction, EntityTrait as _,
    QueryFilter as _,
};
use sha2::{Digest as _, Sha256};
use sqlx::mysql::MySqlRow;
use tokio::io::AsyncReadExt as _;

use crate::{
    Options, Summary,
    legacy::{self, text, truncate, valid_email},
    write::{self, NewUser, Password},
};

const USERS: &str = "users";
const FILES: &str = "files";
const FOLDERS: &str = "folders";

/// The kind column's two literals.
const KIND_FILE: &str = "文件";
const KIND_FOLDER: &str = "文件夹";

/// The files service's default limit per file: larger files could not have been uploaded.
const MAX_FILE_BYTES: u64 = rosetta_files::DEFAULT_MAX_FILE_BYTES;
/// The files service's limits on names (`names.rs`).
const MAX_PART_BYTES: usize = 255;
const MAX_DEPTH: usize = 32;
/// Multipart part size: S3 refuses smaller parts (but the last), a local store takes any.
const PART_BYTES: usize = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;
const READ_CHUNK: usize = 64 * 1024;

/// Imports the DPC database at `from` (and the files under `options.files_dir`) into `target`.
pub async fn import(
    from: &str,
    target: &DatabaseConnection,
    options: &Options,
) -> anyhow::Result<Summary> {
    let pool = legacy::connect(from, "DPC").await?;
    anyhow::ensure!(
        options.files_dir.is_none() || options.store.is_some() || options.dry_run,
        "importing DPC files needs the files store"
    );
    let mut s = Summary::new(options.dry_run);
    let user_rows = read_users(&pool, &mut s).await?;
    let file_rows = read_files(&pool, &mut s).await?;
    pool.close().await;
    let now = rosetta_db::now_ms();

    // Users: DPC showed no ids, so new ones get fresh ids once every row is planned.
    let mut known: HashMap<String, i64> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut lowercase: HashSet<String> = HashSet::new();
    let mut phones: BTreeSet<String> = BTreeSet::new();
    let mut emails: BTreeSet<String> = BTreeSet::new();
    let mut new_users = Vec::new();
    for row in &user_rows {
        s.read(USERS);
        let name = row.name.clone();
        let name_ok = (1..=64).contains(&name.chars().count())
            && !name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '|');
        if !name_ok {
            s.skip(USERS, "user name empty, too long, or with spaces or '|'");
            continue;
        }
        if !seen.insert(name.clone()) {
            // No unique key: a registration race could store a name twice.
            s.skip(
                USERS,
                "same user name again (only the first row's password is kept)",
            );
            continue;
        }
        if !lowercase.insert(name.to_lowercase()) {
            s.note(
                "user names differing only in case: kept apart (the legacy collation may \
                 have matched them as one)",
            );
        }
        let md5 = row.password.trim().to_ascii_lowercase();
        if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            s.skip(
                USERS,
                "password not an MD5 hex digest (the account could never log in)",
            );
            continue;
        }
        if let Some(existing) = user::Entity::find()
            .filter(user::Column::Username.eq(&name))
            .one(target)
            .await?
        {
            if md5_verifier_matches(target, existing.id, &md5).await? {
                s.already(USERS, 1);
                known.insert(name, existing.id);
            } else {
                s.skip(
                    USERS,
                    "user name already used by another Rosetta account (or its password \
                     changed since the import)",
                );
            }
            continue;
        }
        let phone = match valid_phone(&row.phone) {
            Ok(None) => None,
            Ok(Some(phone)) if !phones.insert(phone.clone()) => {
                s.note("phone shared with an earlier user: left empty");
                None
            }
            Ok(Some(phone)) if write::user_with(target, user::Column::Phone, &phone).await? => {
                s.note("phone already used by another Rosetta account: left empty");
                None
            }
            Ok(Some(phone)) => Some(phone),
            Err(()) => {
                s.note("phone not a phone number: left empty");
                None
            }
        };
        let email = match valid_email(&row.email) {
            None if row.email.trim().is_empty() => None,
            Some(email) if !emails.insert(email.clone()) => {
                s.note("e-mail shared with an earlier user: left empty");
                None
            }
            Some(email) if write::user_with(target, user::Column::Email, &email).await? => {
                s.note("e-mail already used by another Rosetta account: left empty");
                None
            }
            Some(email) => Some(email),
            None => {
                s.note("e-mail not an e-mail address: left empty");
                None
            }
        };
        new_users.push(NewUser {
            id: 0,
            username: name.clone(),
            password: Password::Md5Hex(md5),
            nickname: truncate(&name, 64),
            avatar: String::new(),
            signature: String::new(),
            vip: false,
            gender: 0,
            email,
            phone,
            question_id: 0,
            answer: None,
            ocid: None,
            created_at_ms: None,
        });
    }
    let ids = write::fresh_ids(target, "users", new_users.len(), options.dry_run).await?;
    for (user, id) in new_users.iter_mut().zip(ids) {
        user.id = id;
        known.insert(user.username.clone(), id);
    }
    let tx = write::create_users(target, &new_users, options.dry_run, &mut s, USERS).await?;

    // Files.
    let entries = match &options.files_dir {
        Some(dir) => {
            let dir = dir.clone();
            let known = known.clone();
            let (entries, summary) =
                tokio::task::spawn_blocking(move || plan_files(&dir, file_rows, &known, now, s))
                    .await
                    .context("planning the files")??;
            s = summary;
            entries
        }
        None => {
            if !file_rows.is_empty() {
                s.note("--files-dir not given: file rows not imported");
            }
            for row in &file_rows {
                let kind = if row.kind == KIND_FOLDER {
                    FOLDERS
                } else {
                    FILES
                };
                s.read(kind);
                s.skip(kind, "--files-dir not given");
            }
            Vec::new()
        }
    };
    // A dry run writes no blob.
    let store = options.store.clone().filter(|_| !options.dry_run);
    let mut written: Vec<ObjectKey> = Vec::new();
    let result = write_files(&tx, store.as_ref(), entries, &mut written, &mut s).await;
    let result = match result {
        Ok(()) if options.dry_run => tx.rollback().await.map_err(anyhow::Error::from),
        Ok(()) => {
            async {
                write::bump_sequences(&tx).await?;
                tx.commit().await?;
                Ok::<(), anyhow::Error>(())
            }
            .await
        }
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        // The rows are gone with the transaction: so must their blobs be.
        if let Some(store) = &store {
            for key in &written {
                if let Err(del) = store.delete(key).await {
                    tracing::warn!(%key, %del, "could not delete an imported blob");
                }
            }
        }
        return Err(err);
    }
    Ok(s)
}

/// One `user` row.
struct UserRow {
    name: String,
    password: String,
    phone: String,
    email: String,
}

/// One `file` row, by ordinal.
struct FileRow {
    name: String,
    uploader: String,
    time: String,
    kind: String,
    /// Position in the table: the tie-break between rows of the same time.
    order: usize,
}

/// A legacy table's columns in declared order: (name, auto-increment or primary key).
async fn columns(pool: &sqlx::MySqlPool, table: &str) -> anyhow::Result<Vec<(String, bool)>> {
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS BINARY), CAST(EXTRA AS BINARY), CAST(COLUMN_KEY AS BINARY) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .with_context(|| format!("read the columns of DPC table {table}"))?;
    rows.iter()
        .map(|r| {
            let get = |i: usize| -> anyhow::Result<String> {
                let bytes: Option<Vec<u8>> = sqlx::Row::try_get(r, i)?;
                Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
            };
            let key = get(1)?.contains("auto_increment") || get(2)? == "PRI";
            Ok((get(0)?, key))
        })
        .collect()
}

fn quote(column: &str) -> String {
    format!("`{}`", column.replace('`', "``"))
}

async fn fetch(pool: &sqlx::MySqlPool, table: &str, sql: String) -> anyhow::Result<Vec<MySqlRow>> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .with_context(|| format!("read DPC table {table}"))
}

/// `user`, by column name (the code used `SELECT *`; any id column is unknown).
async fn read_users(pool: &sqlx::MySqlPool, s: &mut Summary) -> anyhow::Result<Vec<UserRow>> {
    let cols = columns(pool, "user").await?;
    if cols.is_empty() {
        s.note("table user does not exist: nothing read from it");
        return Ok(Vec::new());
    }
    let find = |want: &str| cols.iter().find(|(c, _)| c.eq_ignore_ascii_case(want));
    let mut select = Vec::new();
    for want in ["username", "password", "phone", "email"] {
        match find(want) {
            Some((c, _)) => select.push(format!("CAST({} AS BINARY)", quote(c))),
            None if want == "phone" || want == "email" => {
                s.note(format!("user has no {want} column: left empty"));
                select.push("NULL".into());
            }
            None => anyhow::bail!("DPC table user has no {want} column"),
        }
    }
    // Registration order, if the table has a key that shows it.
    let order = cols
        .iter()
        .find(|(_, key)| *key)
        .map(|(c, _)| format!(" ORDER BY {}", quote(c)))
        .unwrap_or_default();
    let sql = format!("SELECT {} FROM `user`{order}", select.join(", "));
    let mut out = Vec::new();
    for r in fetch(pool, "user", sql).await? {
        out.push(UserRow {
            name: text(&r, 0, s)?,
            password: text(&r, 1, s)?,
            phone: text(&r, 2, s)?,
            email: text(&r, 3, s)?,
        });
    }
    Ok(out)
}

/// `file`, by ordinal: the server's insert had no column list.
async fn read_files(pool: &sqlx::MySqlPool, s: &mut Summary) -> anyhow::Result<Vec<FileRow>> {
    let cols = columns(pool, "file").await?;
    if cols.is_empty() {
        s.note("table file does not exist: nothing read from it");
        return Ok(Vec::new());
    }
    if cols.len() < 4 {
        anyhow::bail!("DPC table file has {} columns, not 4", cols.len());
    }
    if cols.len() > 4 {
        s.note(
            "table file has more than 4 columns: the first 4 read as name, uploader, time, kind",
        );
    }
    let select: Vec<String> = cols[..4]
        .iter()
        .map(|(c, _)| format!("CAST({} AS BINARY)", quote(c)))
        .collect();
    let sql = format!("SELECT {} FROM `file`", select.join(", "));
    let mut out = Vec::new();
    for (order, r) in fetch(pool, "file", sql).await?.iter().enumerate() {
        out.push(FileRow {
            name: text(r, 0, s)?,
            uploader: text(r, 1, s)?,
            time: text(r, 2, s)?,
            kind: text(r, 3, s)?,
            order,
        });
    }
    Ok(out)
}

/// Whether the account's MD5 hex verifier accepts `md5`: the account is the one an earlier
/// run imported from this row.
async fn md5_verifier_matches(
    db: &DatabaseConnection,
    user_id: i64,
    md5: &str,
) -> anyhow::Result<bool> {
    let Some(found) = credential::Entity::find_by_id((user_id, Scheme::Md5Hex as i16))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let md5 = md5.to_owned();
    tokio::task::spawn_blocking(move || {
        let argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            rosetta_account::argon2_params(),
        );
        PasswordHash::new(&found.verifier)
            .is_ok_and(|phc| argon2.verify_password(md5.as_bytes(), &phc).is_ok())
    })
    .await
    .context("verifying a password")
}

/// The account service's phone rule: 5 to 20 digits, optionally after '+'.
fn valid_phone(text: &str) -> Result<Option<String>, ()> {
    let phone = text.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(phone.to_owned()))
    } else {
        Err(())
    }
}

/// One file to store.
#[derive(Debug)]
struct NewFile {
    disk: PathBuf,
    owner: i64,
    folder: String,
    name: String,
    created_at_ms: i64,
}

/// One legacy row's outcome: a file, or a folder's files.
#[derive(Debug)]
enum Entry {
    File(NewFile),
    Folder(Vec<NewFile>),
}

/// A row that names bytes on disk and an imported uploader.
struct Upload {
    /// The row's position in the table.
    order: usize,
    found: OnDisk,
    owner: i64,
    at: i64,
}

/// What a row names on disk.
enum OnDisk {
    File(PathBuf),
    Folder(PathBuf),
}

/// Matches the rows with the bytes under `dir`: every skipped row and every file without a row
/// is counted with its reason. Returns the entries to store, oldest first.
fn plan_files(
    dir: &Path,
    rows: Vec<FileRow>,
    known: &HashMap<String, i64>,
    now: i64,
    mut s: Summary,
) -> anyhow::Result<(Vec<Entry>, Summary)> {
    let root = std::fs::canonicalize(dir)
        .with_context(|| format!("the files directory {}", dir.display()))?;
    anyhow::ensure!(root.is_dir(), "{} is not a directory", dir.display());

    // Each row checked on its own, then grouped by the path it names.
    let mut by_path: BTreeMap<Vec<String>, Vec<Upload>> = BTreeMap::new();
    let mut referenced: HashSet<PathBuf> = HashSet::new();
    // The legacy collation compared names ignoring case and trailing spaces, so an upload
    // can carry the name as typed at login rather than as registered.
    let mut folded: HashMap<String, Option<i64>> = HashMap::new();
    for (name, &id) in known {
        folded
            .entry(fold(name))
            .and_modify(|found| *found = None)
            .or_insert(Some(id));
    }
    for row in rows {
        let declared = match row.kind.as_str() {
            KIND_FILE => Some(false),
            KIND_FOLDER => Some(true),
            _ => None,
        };
        let parts = match legacy_parts(&row.name) {
            Ok(parts) => parts,
            Err(reason) => {
                let kind = if declared == Some(true) {
                    FOLDERS
                } else {
                    FILES
                };
                s.read(kind);
                s.skip(kind, reason);
                continue;
            }
        };
        let logical = parts.iter().fold(root.clone(), |p, part| p.join(part));
        let found = locate(&root, &logical);
        referenced.insert(logical);
        let kind = match (&found, declared) {
            (Ok(OnDisk::Folder(_)), None) | (_, Some(true)) => FOLDERS,
            _ => FILES,
        };
        s.read(kind);
        if declared.is_none() {
            s.note("file kind neither '文件' nor '文件夹' (lost charset?): taken from the disk");
        }
        let found = match found {
            Ok(found) => found,
            Err(reason) => {
                s.skip(kind, reason);
                continue;
            }
        };
        match (&found, declared) {
            (OnDisk::Folder(_), Some(false)) => {
                s.skip(kind, "a file row, but a folder on disk");
                continue;
            }
            (OnDisk::File(_), Some(true)) => {
                s.skip(kind, "a folder row, but a file on disk");
                continue;
            }
            _ => {}
        }
        if let Err(reason) = rosetta_parts(&parts) {
            s.skip(kind, reason);
            continue;
        }
        let owner = match known.get(&row.uploader) {
            Some(&owner) => owner,
            None => match folded.get(&fold(&row.uploader)) {
                Some(Some(owner)) => {
                    s.note("uploader matched ignoring case or trailing spaces, as MySQL did");
                    *owner
                }
                _ => {
                    s.skip(kind, "uploader not imported");
                    continue;
                }
            },
        };
        let at = parse_local_time(&row.time).unwrap_or_else(|| {
            s.note("upload time unparseable: the import time is used");
            now
        });
        by_path.entry(parts).or_default().push(Upload {
            order: row.order,
            found,
            owner,
            at,
        });
    }

    // The same name uploaded again overwrote the bytes: they are the last upload's.
    let mut chosen: Vec<(Vec<String>, Upload)> = Vec::new();
    for (parts, mut uploads) in by_path {
        uploads.sort_by_key(|u| (u.at, u.order));
        let last = uploads.pop().expect("a group has a row");
        for older in &uploads {
            let kind = match older.found {
                OnDisk::File(_) => FILES,
                OnDisk::Folder(_) => FOLDERS,
            };
            s.skip(
                kind,
                "same name again (one file: the bytes on disk are the last upload's)",
            );
        }
        chosen.push((parts, last));
    }
    chosen.sort_by_key(|(_, u)| (u.at, u.order));

    // Rosetta paths already given to an earlier row (a file row inside a folder row's folder).
    let mut taken_paths: HashSet<(String, String)> = HashSet::new();
    let mut entries = Vec::new();
    for (
        parts,
        Upload {
            found, owner, at, ..
        },
    ) in chosen
    {
        match found {
            OnDisk::File(disk) => {
                let (name, folder) = parts.split_last().expect("a path has a part");
                if !taken_paths.insert((folder.join("/"), name.clone())) {
                    s.skip(FILES, "same path as a file of another row (imported once)");
                    continue;
                }
                colon_note(&parts, &mut s);
                entries.push(Entry::File(NewFile {
                    disk,
                    owner,
                    folder: folder.join("/"),
                    name: name.clone(),
                    created_at_ms: at,
                }));
            }
            OnDisk::Folder(disk) => {
                let mut files = Vec::new();
                let (found, empty_dirs) = below(&disk)?;
                if empty_dirs > 0 {
                    s.note("empty sub-folder not kept (folders exist only through their files)");
                }
                if found.is_empty() {
                    s.skip(
                        FOLDERS,
                        "empty folder (folders exist only through their files)",
                    );
                    continue;
                }
                for path in found {
                    s.read(FILES);
                    let Some(parts) = relative_parts(&root, &path) else {
                        s.skip(FILES, "name not valid UTF-8");
                        continue;
                    };
                    if let Err(reason) = rosetta_parts(&parts) {
                        s.skip(FILES, reason);
                        continue;
                    }
                    let disk = match locate(&root, &path) {
                        Ok(OnDisk::File(disk)) => disk,
                        Ok(OnDisk::Folder(_)) => {
                            s.skip(FILES, "symlinked folder not followed");
                            continue;
                        }
                        Err(reason) => {
                            s.skip(FILES, reason);
                            continue;
                        }
                    };
                    let (name, folder) = parts.split_last().expect("a path has a part");
                    if !taken_paths.insert((folder.join("/"), name.clone())) {
                        s.skip(FILES, "same path as a file of another row (imported once)");
                        continue;
                    }
                    colon_note(&parts, &mut s);
                    files.push(NewFile {
                        disk,
                        owner,
                        folder: folder.join("/"),
                        name: name.clone(),
                        created_at_ms: at,
                    });
                }
                if files.is_empty() {
                    s.skip(FOLDERS, "no importable file inside");
                    continue;
                }
                entries.push(Entry::Folder(files));
            }
        }
    }

    // Files no row names: the server's own scripts, or uploads whose row insert failed (a
    // quote in the name broke the %-interpolated SQL).
    let (all, _) = below(&root)?;
    for path in all {
        if !path.ancestors().any(|a| referenced.contains(a)) {
            s.read(FILES);
            s.skip(
                FILES,
                "on disk without a file row (the server's scripts, or an upload whose row \
                 insert failed)",
            );
        }
    }
    Ok((entries, s))
}

/// A user name as MySQL's default collation compares it.
fn fold(name: &str) -> String {
    name.trim_end_matches(' ').to_lowercase()
}

/// The parts of a name from the `file` table, as the server resolved it against its
/// directory; why not, for a name that would leave it.
fn legacy_parts(name: &str) -> Result<Vec<String>, &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.starts_with('/') {
        return Err("absolute path (outside the files directory)");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.contains(&"..") {
        return Err("path with '..' (outside the files directory)");
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err("path with empty or '.' parts");
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

/// Why the files service would refuse this path as folder + name, if it would.
fn rosetta_parts(parts: &[String]) -> Result<(), &'static str> {
    if parts.len() > MAX_DEPTH + 1 {
        return Err("folder deeper than the files service allows");
    }
    if parts.iter().any(|p| p.contains('\\')) {
        return Err("name with '\\' (a folder separator for the files service)");
    }
    if parts.iter().any(|p| p.chars().any(char::is_control)) {
        return Err("name with control characters");
    }
    if parts.iter().any(|p| p.len() > MAX_PART_BYTES) {
        return Err("name part longer than 255 bytes");
    }
    if parts.len() > 1 {
        let mut chars = parts[0].chars();
        if matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_ascii_alphabetic()) {
            return Err("folder starting like a drive letter");
        }
    }
    Ok(())
}

/// The DPC bridge refuses ':' in names it is asked to download (drive letters); the files
/// service keeps such names, so other clients still get the file.
fn colon_note(parts: &[String], s: &mut Summary) {
    if parts.iter().any(|p| p.contains(':')) {
        s.note("name with ':': imported, but DPC clients cannot download it");
    }
}

/// What `path` is once every symlink is resolved, if that is inside `root`.
fn locate(root: &Path, path: &Path) -> Result<OnDisk, &'static str> {
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err("bytes missing"),
        Err(_) => return Err("unreadable on disk"),
    };
    if !real.starts_with(root) || real == root {
        return Err("resolves outside the files directory (symlink)");
    }
    match std::fs::metadata(&real) {
        Ok(meta) if meta.is_file() => Ok(OnDisk::File(real)),
        Ok(meta) if meta.is_dir() => Ok(OnDisk::Folder(real)),
        Ok(_) => Err("neither a file nor a folder"),
        Err(_) => Err("unreadable on disk"),
    }
}

/// Every non-directory entry below `dir` (symlinks included, not followed), in name order,
/// and how many directories below it are empty.
fn below(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    let mut out = Vec::new();
    let mut empty = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(&d)
            .with_context(|| format!("list {}", d.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("list {}", d.display()))?;
        if children.is_empty() && d != dir {
            empty += 1;
        }
        children.sort();
        for child in children.into_iter().rev() {
            let meta = std::fs::symlink_metadata(&child)
                .with_context(|| format!("inspect {}", child.display()))?;
            if meta.is_dir() {
                stack.push(child);
            } else {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok((out, empty))
}

/// `path` relative to `root`, as UTF-8 parts.
fn relative_parts(root: &Path, path: &Path) -> Option<Vec<String>> {
    path.strip_prefix(root)
        .ok()?
        .components()
        .map(|c| c.as_os_str().to_str().map(str::to_owned))
        .collect()
}

/// The server's `YYYY-MM-DD HH:MM:SS` in local time (the bridge shows it back in local time).
fn parse_local_time(text: &str) -> Option<i64> {
    use chrono::{NaiveDateTime, TimeZone as _};
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(
        chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .map_or_else(
                || naive.and_utc().timestamp_millis(),
                |t| t.timestamp_millis(),
            ),
    )
}

/// Stores every planned file (in the transaction) and its blob; `written` collects the blobs
/// so that a failed import can remove them.
async fn write_files(
    tx: &DatabaseTransaction,
    store: Option<&Arc<dyn ObjectStore>>,
    entries: Vec<Entry>,
    written: &mut Vec<ObjectKey>,
    s: &mut Summary,
) -> anyhow::Result<()> {
    let mut owners: BTreeSet<i64> = BTreeSet::new();
    for entry in entries {
        match entry {
            Entry::File(f) => {
                owners.insert(f.owner);
                store_file(tx, store, &f, written, s).await?;
            }
            Entry::Folder(files) => {
                let (mut new, mut old) = (false, false);
                for f in &files {
                    owners.insert(f.owner);
                    match store_file(tx, store, f, written, s).await? {
                        Some(true) => new = true,
                        Some(false) => old = true,
                        None => {}
                    }
                }
                if new {
                    s.imported(FOLDERS, 1);
                } else if old {
                    s.already(FOLDERS, 1);
                } else {
                    s.skip(FOLDERS, "no importable file inside");
                }
            }
        }
    }
    for owner in owners {
        let used: i64 = file::Entity::find()
            .filter(file::Column::OwnerId.eq(owner))
            .all(tx)
            .await?
            .iter()
            .map(|f| f.size)
            .sum();
        if u64::try_from(used).unwrap_or(0) > rosetta_files::DEFAULT_QUOTA_BYTES {
            s.note("a user's files pass the default 10 GiB quota: their new uploads are refused");
        }
    }
    Ok(())
}

/// Stores one file unless it is there already: `Some(true)` stored, `Some(false)` already
/// there, `None` skipped (counted with its reason).
async fn store_file(
    tx: &DatabaseTransaction,
    store: Option<&Arc<dyn ObjectStore>>,
    f: &NewFile,
    written: &mut Vec<ObjectKey>,
    s: &mut Summary,
) -> anyhow::Result<Option<bool>> {
    let size = match tokio::fs::metadata(&f.disk).await {
        Ok(meta) => meta.len(),
        Err(_) => {
            s.skip(FILES, "unreadable on disk");
            return Ok(None);
        }
    };
    if size > MAX_FILE_BYTES {
        s.skip(FILES, "larger than the files service's 1 GiB default limit");
        return Ok(None);
    }
    // Only a file of the same owner, place and size can be this one: hash only then.
    let candidates = file::Entity::find()
        .filter(file::Column::OwnerId.eq(f.owner))
        .filter(file::Column::Folder.eq(&f.folder))
        .filter(file::Column::Name.eq(&f.name))
        .filter(file::Column::Size.eq(i64::try_from(size).unwrap_or(i64::MAX)))
        .filter(file::Column::Visibility.eq(Visibility::Public as i16))
        .all(tx)
        .await?;
    let expected = if candidates.is_empty() {
        None
    } else {
        let Ok(sha256) = hash_file(&f.disk).await else {
            s.skip(FILES, "unreadable on disk");
            return Ok(None);
        };
        if candidates.iter().any(|c| c.sha256 == sha256) {
            s.already(FILES, 1);
            return Ok(Some(false));
        }
        Some(sha256)
    };
    let Some(store) = store else {
        // A dry run (checked at the start): nothing is written, but the bytes must be readable.
        if tokio::fs::File::open(&f.disk).await.is_err() {
            s.skip(FILES, "unreadable on disk");
            return Ok(None);
        }
        s.imported(FILES, 1);
        return Ok(Some(true));
    };
    // The files service's naming: a fresh 32-hex id, the blob at `files/<id>`.
    let id = hex::encode(rand::random::<[u8; 16]>());
    let key = rosetta_files::object_key(&id);
    let sha256 = match put_blob(store, &key, &f.disk, size).await? {
        Ok(sha256) => sha256,
        Err(reason) => {
            s.skip(FILES, reason);
            return Ok(None);
        }
    };
    if expected.is_some_and(|e| e != sha256) {
        if let Err(err) = store.delete(&key).await {
            tracing::warn!(%key, %err, "could not delete a blob");
        }
        s.skip(FILES, "changed on disk while being imported");
        return Ok(None);
    }
    written.push(key.clone());
    file::Entity::insert(file::ActiveModel {
        id: Set(id),
        owner_id: Set(f.owner),
        name: Set(f.name.clone()),
        folder: Set(f.folder.clone()),
        size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
        sha256: Set(sha256),
        content_type: Set(String::new()),
        visibility: Set(Visibility::Public as i16),
        conv_user_id: Set(None),
        conv_group_id: Set(None),
        object_key: Set(key.to_string()),
        created_at_ms: Set(f.created_at_ms),
        ..Default::default()
    })
    .exec_without_returning(tx)
    .await
    .with_context(|| format!("insert file {}/{}", f.folder, f.name))?;
    s.imported(FILES, 1);
    Ok(Some(true))
}

async fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Streams the file into a new blob at `key`, hashing on the way, as the service's upload
/// does. The blob is completed only when exactly `size` bytes were read; otherwise it is
/// aborted and the reason returned. Store failures are errors.
async fn put_blob(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectKey,
    path: &Path,
    size: u64,
) -> anyhow::Result<Result<String, &'static str>> {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Ok(Err("unreadable on disk"));
    };
    let upload = store
        .put_multipart(key)
        .await
        .with_context(|| format!("start blob {key}"))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut buf = vec![0u8; READ_CHUNK];
    let outcome: anyhow::Result<Result<(), &'static str>> = async {
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => return Ok(Err("unreadable on disk")),
            };
            received += n as u64;
            if received > size {
                return Ok(Err("changed on disk while being imported"));
            }
            hasher.update(&buf[..n]);
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .with_context(|| format!("write blob {key}"))?;
            writer.write(&buf[..n]);
        }
        if received != size {
            return Ok(Err("changed on disk while being imported"));
        }
        Ok(Ok(()))
    }
    .await;
    match outcome {
        Ok(Ok(())) => {
            writer
                .finish()
                .await
                .with_context(|| format!("complete blob {key}"))?;
            Ok(Ok(hex::encode(hasher.finalize())))
        }
        Ok(Err(reason)) => {
            abort(writer, key).await;
            Ok(Err(reason))
        }
        Err(err) => {
            abort(writer, key).await;
            Err(err)
        }
    }
}

async fn abort(writer: WriteMultipart, key: &ObjectKey) {
    if let Err(err) = writer.abort().await {
        tracing::warn!(%key, %err, "could not abort a blob upload");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_stay_inside_the_directory() {
        assert_eq!(legacy_parts("a.txt").unwrap(), ["a.txt"]);
        assert_eq!(legacy_parts("pics/a b.txt").unwrap(), ["pics", "a b.txt"]);
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a/"] {
            assert!(legacy_parts(bad).is_err(), "{bad:?}");
        }
        let parts = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(rosetta_parts(&parts(&["win\\x.txt"])).is_err());
        assert!(rosetta_parts(&parts(&["bell\u{7}"])).is_err());
        assert!(rosetta_parts(&parts(&["C:", "x"])).is_err());
        assert!(rosetta_parts(&parts(&["C:x"])).is_ok());
        assert!(rosetta_parts(&parts(&["it's \"quoted\".txt"])).is_ok());
    }

    #[test]
    fn contacts_follow_the_account_rules() {
        assert_eq!(valid_phone(" 13800138000 "), Ok(Some("13800138000".into())));
        assert_eq!(valid_phone(""), Ok(None));
        assert_eq!(valid_phone("12ab"), Err(()));
    }

    #[test]
    fn times_are_local() {
        use chrono::TimeZone as _;
        let at = parse_local_time("2019-09-05 10:00:00").unwrap();
        let back = chrono::Local.timestamp_millis_opt(at).unwrap();
        assert_eq!(
            back.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2019-09-05 10:00:00"
        );
        assert_eq!(parse_local_time("yesterday"), None);
    }
}
