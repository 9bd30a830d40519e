//! Friends and groups.
//!
//! | legacy command | canonical call | legacy reply |
//! |---|---|---|
//! | `get_user_friend` | `ListContacts` (all pages) | `friendinfo\|n\|00<id>…` |
//! | `get_user_group` | `ListMyGroups` (all pages) | `groupinfo\|n\|<gid>…` |
//! | `get_group_info` | `GetGroup` + `ListGroupMembers` | `group_detail_info\|…` |
//! | `add_friend` | `SendFriendRequest` | `add_friend_succ` / `add_friend_error` |
//! | `del_friend` | `RemoveFriend` | `del_friend_succ` |
//! | `hand_friend_request` | `RespondFriendRequest` | `hand_friend_request_succ` / `_error` |
//! | `create_group` | `CreateGroup` (client's id as `requested_id`) | `create_group_succ` / `_error` |
//! | `join_group` | `RequestJoinGroup` | `join_group_succ` / `join_group_error` |
//! | `hand_group_request` | `RespondJoinRequest` | `hand_group_request_succ` / `_error` |
//! | `get_unread_friend_request` | `ListFriendRequests` (incoming, pending) | `unread_friend_request\|…` |
//! | `get_unread_group_request` | `ListJoinRequests` (pending) | `unread_group_request\|…` |

use rosetta_bridge_kit::{UserSession, all_pages};
use rosetta_proto::{
    common::v1::{PageRequest, PageResponse, UserRef, user_ref},
    social::v1::{
        Applicant, CreateGroupRequest, Direction, GetGroupRequest, ListContactsRequest,
        ListFriendRequestsRequest, ListGroupMembersRequest, ListJoinRequestsRequest,
        ListMyGroupsRequest, RemoveFriendRequest, RequestJoinGroupRequest,
        RespondFriendRequestRequest, RespondJoinRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request, respond_join_request_request,
    },
};
use tonic::Status;

use super::{
    Connection, MAX_PAGES, PAGE,
    login::release,
    reasons::{Call, refused},
};
use crate::codec::{Auth, Command, Id, PendingFriend, PendingJoin, Reply};

/// The request for one page of a listing.
fn page(page_token: String) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: PAGE,
        page_token,
    })
}

/// The token of the page after this one (empty after the last).
fn next(page: Option<PageResponse>) -> String {
    page.map(|p| p.next_page_token).unwrap_or_default()
}

/// Accept (`0`) or reject (`1`), judged by the first character as the real server did.
fn flag(flag: &str) -> Option<bool> {
    match flag.as_bytes().first() {
        Some(b'0') => Some(true),
        Some(b'1') => Some(false),
        _ => None,
    }
}

/// `get_user_friend|uid|token`.
pub(super) async fn friends(session: &UserSession) -> Result<Reply, Status> {
    let friends = all_pages(MAX_PAGES, |token| async move {
        let listed = session
            .call(
                ListContactsRequest { page: page(token) },
                |b, r| async move { b.social().list_contacts(r).await },
            )
            .await?;
        let ids = listed.contacts.iter().filter_map(|c| c.user.as_ref());
        Ok((ids.map(|u| u.id).collect(), next(listed.page)))
    })
    .await?;
    Ok(Reply::FriendInfo { friends })
}

/// `get_user_group|uid|token`.
pub(super) async fn groups(session: &UserSession) -> Result<Reply, Status> {
    let groups = all_pages(MAX_PAGES, |token| async move {
        let listed = session
            .call(
                ListMyGroupsRequest { page: page(token) },
                |b, r| async move { b.social().list_my_groups(r).await },
            )
            .await?;
        Ok((
            listed.groups.iter().map(|g| g.id).collect(),
            next(listed.page),
        ))
    })
    .await?;
    Ok(Reply::GroupInfo { groups })
}

/// `get_group_info|uid|gid|token`: the owner, then the other members.
pub(super) async fn group_info(
    session: &UserSession,
    group: Id,
    doc_layout: bool,
) -> Result<Reply, Status> {
    let request = GetGroupRequest {
        group_id: group.value,
    };
    let found = session
        .call(request, |b, r| async move { b.social().get_group(r).await })
        .await;
    let found = match found {
        Ok(found) => found,
        Err(status) => return refused(Call::GetGroup, status),
    };
    let (owner, group_id) = (found.owner_id, group.value);
    let members = all_pages(MAX_PAGES, |token| async move {
        let request = ListGroupMembersRequest {
            group_id,
            page: page(token),
        };
        let listed = session
            .call(request, |b, r| async move {
                b.social().list_group_members(r).await
            })
            .await?;
        let ids = listed.members.iter().filter_map(|m| m.user.as_ref());
        let others = ids.map(|u| u.id).filter(|id| *id != owner).collect();
        Ok((others, next(listed.page)))
    })
    .await?;
    Ok(Reply::GroupDetail {
        group: group.raw,
        name: found.name,
        admin: owner,
        members,
        doc_layout,
    })
}

/// `add_friend|uid|target|note|token`.
pub(super) async fn add_friend(
    session: &UserSession,
    target: Id,
    note: String,
) -> Result<Reply, Status> {
    if target.value == session.user_id() {
        return Ok(Reply::AddFriendError("不能添加自己！"));
    }
    let request = SendFriendRequestRequest {
        to: Some(UserRef {
            r#ref: Some(user_ref::Ref::Id(target.value)),
        }),
        note,
    };
    let sent = session
        .call(request, |b, r| async move {
            b.social().send_friend_request(r).await
        })
        .await;
    match sent {
        Ok(_) => Ok(Reply::AddFriendSucc),
        Err(status) => refused(Call::SendFriendRequest, status),
    }
}

/// `del_friend|uid|friend|token`.
pub(super) async fn del_friend(session: &UserSession, friend: Id) -> Result<Reply, Status> {
    let request = RemoveFriendRequest {
        user_id: friend.value,
    };
    let removed = session
        .call(
            request,
            |b, r| async move { b.social().remove_friend(r).await },
        )
        .await;
    match removed {
        Ok(_) => Ok(Reply::DelFriendSucc),
        Err(status) => refused(Call::RemoveFriend, status),
    }
}

/// `hand_friend_request|uid|applicant|flag|token`.
pub(super) async fn hand_friend_request(
    session: &UserSession,
    applicant: Id,
    answer: &str,
) -> Result<Reply, Status> {
    let Some(accept) = flag(answer) else {
        return Ok(Reply::HandFriendRequestError("无效的操作！"));
    };
    let request = RespondFriendRequestRequest {
        request: Some(respond_friend_request_request::Request::FromUserId(
            applicant.value,
        )),
        accept,
    };
    let answered = session
        .call(request, |b, r| async move {
            b.social().respond_friend_request(r).await
        })
        .await;
    match answered {
        Ok(_) => Ok(Reply::HandFriendRequestSucc { accepted: accept }),
        Err(status) => refused(Call::RespondFriendRequest, status),
    }
}

/// `create_group|uid|name|gid|token` (or the seed's `uid|name|token`: the service picks).
pub(super) async fn create_group(
    session: &UserSession,
    name: String,
    group: Option<Id>,
) -> Result<Reply, Status> {
    let request = CreateGroupRequest {
        name,
        requested_id: group.as_ref().map(|g| g.value),
        ..Default::default()
    };
    let created = session
        .call(
            request,
            |b, r| async move { b.social().create_group(r).await },
        )
        .await;
    match created {
        Ok(created) => Ok(Reply::CreateGroupSucc {
            group: group.map_or_else(|| created.id.to_string(), |g| g.raw),
        }),
        Err(status) => refused(Call::CreateGroup, status),
    }
}

/// `join_group|uid|gid|note|token`: stored for the owner, who is pushed `group_request`.
pub(super) async fn join_group(
    session: &UserSession,
    group: Id,
    note: String,
) -> Result<Reply, Status> {
    let request = RequestJoinGroupRequest {
        group_id: group.value,
        note,
    };
    let asked = session
        .call(request, |b, r| async move {
            b.social().request_join_group(r).await
        })
        .await;
    match asked {
        Ok(_) => Ok(Reply::JoinGroupSucc),
        Err(status) => refused(Call::RequestJoinGroup, status),
    }
}

/// `get_unread_friend_request[|uid|token]`.
pub(super) async fn unread_friend_requests(session: &UserSession) -> Result<Reply, Status> {
    let pending = all_pages(MAX_PAGES, |token| async move {
        let request = ListFriendRequestsRequest {
            direction: Direction::Incoming.into(),
            include_answered: false,
            page: page(token),
        };
        let listed = session
            .call(request, |b, r| async move {
                b.social().list_friend_requests(r).await
            })
            .await?;
        let pending = listed.requests.into_iter().map(|r| PendingFriend {
            applicant: r.from.map_or(0, |u| u.id),
            note: r.note,
        });
        Ok((pending.collect(), next(listed.page)))
    })
    .await?;
    Ok(Reply::UnreadFriendRequests(pending))
}

/// `get_unread_group_request[|uid|token]`: requests for groups the user owns or administers.
pub(super) async fn unread_group_requests(session: &UserSession) -> Result<Reply, Status> {
    let pending = all_pages(MAX_PAGES, |token| async move {
        let request = ListJoinRequestsRequest {
            group_id: 0,
            mine: false,
            include_answered: false,
            page: page(token),
        };
        let listed = session
            .call(request, |b, r| async move {
                b.social().list_join_requests(r).await
            })
            .await?;
        let pending = listed.requests.into_iter().map(|r| PendingJoin {
            applicant: r.applicant.map_or(0, |u| u.id),
            group: r.group_id,
            note: r.note,
        });
        Ok((pending.collect(), next(listed.page)))
    })
    .await?;
    Ok(Reply::UnreadGroupRequests(pending))
}

impl Connection {
    /// `hand_group_request|admin|applicant|gid|flag|token` (HEAD), or the seed's form without
    /// the admin, who is then the owner of this connection's token.
    pub(super) async fn hand_group_request(
        &mut self,
        admin: Option<Id>,
        token: String,
        applicant: Id,
        group: Id,
        answer: &str,
    ) -> bool {
        let command = Command::HandGroupRequest;
        let actor = match admin {
            Some(uid) => self.authorize(command, &Auth { uid, token }).await,
            None => self.own(Some(&token)).ok_or(command.token_error()),
        };
        let actor = match actor {
            Ok(actor) => actor,
            Err(reply) => return self.fail(command, reply).await,
        };
        let reply = match flag(answer) {
            None => Ok(Reply::HandGroupRequestError("无效的操作！")),
            Some(accept) => {
                let request = RespondJoinRequestRequest {
                    request: Some(respond_join_request_request::Request::Applicant(
                        Applicant {
                            group_id: group.value,
                            user_id: applicant.value,
                        },
                    )),
                    accept,
                };
                let answered = actor
                    .session()
                    .call(request, |b, r| async move {
                        b.social().respond_join_request(r).await
                    })
                    .await;
                match answered {
                    Ok(_) => Ok(Reply::HandGroupRequestSucc { accepted: accept }),
                    Err(status) => refused(Call::RespondJoinRequest, status),
                }
            }
        };
        release(actor).await;
        self.answer(command, reply).await
    }
}
