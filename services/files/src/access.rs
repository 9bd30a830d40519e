//! Who may see a file, and where an upload may be shared.
//!
//! Private files: the owner. Conversation files: the owner and, for a private conversation,
//! the other participant; for a group, its current members (read from the social tables, so
//! leaving a group ends access). Public files: everyone.

use rosetta_db::entity::{files::file, social::group_member, user};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref::Ref},
    files::v1::Visibility,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

pub(crate) async fn can_see(
    db: &impl ConnectionTrait,
    viewer: i64,
    row: &file::Model,
) -> ApiResult<bool> {
    if row.owner_id == viewer {
        return Ok(true);
    }
    Ok(match Visibility::try_from(i32::from(row.visibility)) {
        Ok(Visibility::Public) => true,
        Ok(Visibility::Conversation) => match (row.conv_user_id, row.conv_group_id) {
            (Some(user), _) => user == viewer,
            (None, Some(group)) => is_member(db, group, viewer).await?,
            (None, None) => false,
        },
        _ => false,
    })
}

async fn is_member(db: &impl ConnectionTrait, group: i64, user: i64) -> ApiResult<bool> {
    let n = group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(group))
        .filter(group_member::Column::UserId.eq(user))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// The visibility and conversation columns of a new upload by `owner`: a conversation is
/// required for (and only for) conversation visibility, its user must exist and the owner must
/// be a member of its group.
pub(crate) async fn sharing(
    db: &impl ConnectionTrait,
    owner: i64,
    visibility: i32,
    conversation: Option<&ConversationRef>,
) -> ApiResult<(Visibility, Option<i64>, Option<i64>)> {
    let visibility = match Visibility::try_from(visibility) {
        Ok(Visibility::Unspecified) => Visibility::Private,
        Ok(v) => v,
        Err(_) => {
            return Err(ApiError::invalid(
                Reason::BadVisibility,
                "unknown visibility",
            ));
        }
    };
    let conversation = conversation.and_then(|c| c.r#ref.as_ref());
    match (visibility, conversation) {
        (Visibility::Conversation, Some(Ref::UserId(user))) => {
            let exists = user::Entity::find_by_id(*user)
                .filter(user::Column::DeletedAtMs.is_null())
                .count(db)
                .await?;
            if exists == 0 {
                return Err(ApiError::not_found("no such user to share with"));
            }
            Ok((visibility, Some(*user), None))
        }
        (Visibility::Conversation, Some(Ref::GroupId(group))) => {
            if !is_member(db, *group, owner).await? {
                return Err(ApiError::denied(
                    Reason::Forbidden,
                    "you can share files only in groups you belong to",
                ));
            }
            Ok((visibility, None, Some(*group)))
        }
        (Visibility::Conversation, None) => Err(ApiError::invalid(
            Reason::BadConversation,
            "conversation visibility needs a conversation",
        )),
        (_, Some(_)) => Err(ApiError::invalid(
            Reason::BadConversation,
            "a conversation is given only with conversation visibility",
        )),
        (_, None) => Ok((visibility, None, None)),
    }
}
