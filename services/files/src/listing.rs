//! Listings: the caller's files or the public shared listing, one folder at a time (sub-folders
//! first, each shown once with the owner and time of its first upload, then the files), or
//! every file below a folder (`recursive`, how DPC clients download a folder).
//!
//! Folders and files share one keyset page token: a folder's key is its first upload's `seq`
//! shifted far below zero, a file's key is its own `seq`, so folders sort before files and
//! both stay in upload order.

use std::collections::BTreeMap;

use rosetta_auth::Caller;
use rosetta_db::entity::files::file;
use rosetta_kit::{ApiError, ApiResult, Reason, page::Page};
use rosetta_proto::files::v1::{
    Folder, ListEntry, ListFilesRequest, ListFilesResponse, ListScope, Visibility,
    list_entry::Entry,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func},
};

use crate::{Files, info, names};

/// Added to a folder's first `seq` to make its page key: below every file's key.
const FOLDER_KEY_BASE: i64 = i64::MIN / 2;

impl Files {
    pub async fn list(
        &self,
        caller: &Caller,
        req: ListFilesRequest,
    ) -> ApiResult<ListFilesResponse> {
        let scope = match ListScope::try_from(req.scope) {
            Ok(ListScope::Unspecified | ListScope::Mine) => {
                Condition::all().add(file::Column::OwnerId.eq(caller.user_id))
            }
            Ok(ListScope::Public) => {
                Condition::all().add(file::Column::Visibility.eq(Visibility::Public as i16))
            }
            Err(_) => return Err(ApiError::invalid(Reason::BadScope, "unknown list scope")),
        };
        let folder = names::folder(&req.folder)?;
        let page = Page::from_request(req.page.as_ref())?;
        let after = page.after.unwrap_or(i64::MIN);

        let mut entries: Vec<(i64, ListEntry)> = Vec::new();
        if !req.recursive {
            entries = self.subfolders(scope.clone(), &folder).await?;
            entries.retain(|(key, _)| *key > after);
            entries.truncate(usize::try_from(page.fetch()).unwrap_or(usize::MAX));
        }
        let room = page.fetch().saturating_sub(entries.len() as u64);
        if room > 0 {
            let place = if req.recursive {
                Condition::any()
                    .add(file::Column::Folder.eq(folder.as_str()))
                    .add(below(&folder))
            } else {
                Condition::all().add(file::Column::Folder.eq(folder.as_str()))
            };
            let files = file::Entity::find()
                .filter(scope)
                .filter(place)
                .filter(file::Column::Seq.gt(std::cmp::max(after, 0)))
                .order_by_asc(file::Column::Seq)
                .limit(room)
                .all(&self.db)
                .await?;
            entries.extend(files.iter().map(|row| {
                let entry = Entry::File(info::file_info(row));
                (row.seq, ListEntry { entry: Some(entry) })
            }));
        }
        let (entries, page) = page.finish(entries, |(key, _)| *key);
        Ok(ListFilesResponse {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            page: Some(page),
        })
    }

    /// The immediate sub-folders of `folder` within `scope`, keyed and ordered by their first
    /// upload. Reads one row per distinct stored folder below, not one per file.
    async fn subfolders(&self, scope: Condition, folder: &str) -> ApiResult<Vec<(i64, ListEntry)>> {
        let stored: Vec<(String, i64)> = file::Entity::find()
            .select_only()
            .column(file::Column::Folder)
            .column_as(file::Column::Seq.min(), "first_seq")
            .filter(scope)
            .filter(below(folder))
            .group_by(file::Column::Folder)
            .into_tuple()
            .all(&self.db)
            .await?;
        // Collapse deeper folders onto the child of `folder` they sit in.
        let mut children: BTreeMap<String, i64> = BTreeMap::new();
        for (path, first) in stored {
            let rest = if folder.is_empty() {
                path.as_str()
            } else {
                path.get(folder.len() + 1..).unwrap_or_default()
            };
            let child = rest.split('/').next().unwrap_or_default();
            let child = if folder.is_empty() {
                child.to_owned()
            } else {
                format!("{folder}/{child}")
            };
            children
                .entry(child)
                .and_modify(|seq| *seq = std::cmp::min(*seq, first))
                .or_insert(first);
        }
        if children.is_empty() {
            return Ok(Vec::new());
        }
        let firsts: BTreeMap<i64, (i64, i64)> = file::Entity::find()
            .select_only()
            .columns([
                file::Column::Seq,
                file::Column::OwnerId,
                file::Column::CreatedAtMs,
            ])
            .filter(file::Column::Seq.is_in(children.values().copied()))
            .into_tuple::<(i64, i64, i64)>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(seq, owner, at)| (seq, (owner, at)))
            .collect();
        let mut out: Vec<(i64, ListEntry)> = children
            .into_iter()
            .filter_map(|(path, seq)| {
                let (owner_id, created_at_ms) = *firsts.get(&seq)?;
                let entry = Entry::Folder(Folder {
                    path,
                    owner_id,
                    created_at_ms,
                });
                Some((FOLDER_KEY_BASE + seq, ListEntry { entry: Some(entry) }))
            })
            .collect();
        out.sort_by_key(|(key, _)| *key);
        Ok(out)
    }
}

/// Files strictly below `folder`. A byte-exact prefix test (`substr`), unlike `LIKE`, which
/// SQLite folds to case-insensitive and which treats `%` and `_` in names as wildcards.
fn below(folder: &str) -> Condition {
    if folder.is_empty() {
        return Condition::all().add(file::Column::Folder.ne(""));
    }
    let prefix = format!("{folder}/");
    // Characters, as `substr` counts them on both backends; i32 because PostgreSQL's
    // `substr(text, integer, integer)` has no bigint form.
    let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    let head = Func::cust("substr")
        .arg(Expr::col(file::Column::Folder))
        .arg(1i32)
        .arg(len);
    Condition::all().add(Expr::expr(head).eq(prefix))
}
