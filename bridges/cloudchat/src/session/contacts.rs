//! Contacts, searches and friend requests:
//!
//! | CloudChat | canonical | reply |
//! |---|---|---|
//! | LOAD_CONTACTS | ListContacts (all pages) | CONTACTS_LOADED / CONTACTS_LOADED_FAILED |
//! | SEARCH_FOR_USER_BY_ID / _NAME | SearchUsers, GetPresence | SEARCH_FOR_USER_RESULT |
//! | LOAD_FRIEND_REQUEST | ListFriendRequests (both ways, answered too; the newest per pair) | FRIEND_REQUEST_LOADED / …_FAILED |
//! | ADD_FRIEND_REQUEST, ADD_CONTACT | SendFriendRequest | FRIEND_REQUEST_ADDED / FRIEND_REQUEST_ADDED_FAILED |
//! | ACCEPT_FRIEND_REQUEST | RespondFriendRequest (accept), GetPresence | FRIEND_REQUEST_ACCEPTED + CONTACT_ADDED / …_FAILED |
//! | REFUSE_FRIEND_REQUEST | RespondFriendRequest (refuse) | FRIEND_REQUEST_REFUSED / …_FAILED |
//! | DELETE_CONTACT | RemoveFriend | CONTACT_DELETED / CONTACT_DELETED_FAILED |

use std::collections::{HashMap, HashSet};

use rosetta_bridge_kit::{UserSession, all_pages};
use rosetta_proto::{
    account::v1::{SearchUsersRequest, search_users_request::Query},
    common::v1::{UserRef, user_ref},
    messaging::v1::GetPresenceRequest,
    social::v1::{
        Direction, FriendRequest, ListContactsRequest, ListFriendRequestsRequest, PresenceStatus,
        RemoveFriendRequest, RequestState, RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request,
    },
};
use serde_json::{Value, json};
use tonic::Status;

use super::{
    Conn, MAX_PAGES, NOT_LOGGED_IN, Out, PAGE, Replies, avatar_of, page, post_to_sockets,
    refusals::{NO_SUCH_REQUEST, Step, failed, refused},
    reply,
};
use crate::codec::{self, FriendRequestView, RequestStatus};

/// DELETE_CONTACT of somebody who is not a contact.
const NOT_FRIENDS: &str = "你和 TA 不是好友";

pub(super) async fn load(session: &UserSession) -> Replies {
    let contacts = all_pages(MAX_PAGES, |token| async move {
        let list = ListContactsRequest {
            page: Some(page(&token)),
        };
        let listed = session
            .call(list, |backend, r| async move {
                backend.social().list_contacts(r).await
            })
            .await?;
        let next = listed.page.map(|p| p.next_page_token).unwrap_or_default();
        Ok((listed.contacts, next))
    })
    .await
    .map_err(|status| failed(session.user_id(), Step::Listing, &status))?;
    let contacts: Vec<Value> = contacts
        .into_iter()
        .map(|c| {
            let user = c.user.unwrap_or_default();
            let online = c
                .presence
                .is_some_and(|p| p.status == PresenceStatus::Online as i32);
            codec::contact(user.id, &user.username, avatar_of(&user), online)
        })
        .collect();
    Ok(vec![reply(
        "CONTACTS_LOADED",
        json!({"contacts": contacts}),
    )])
}

pub(super) async fn friend_requests(session: &UserSession) -> Replies {
    let requests = all_pages(MAX_PAGES, |token| async move {
        let list = ListFriendRequestsRequest {
            direction: Direction::Both as i32,
            include_answered: true,
            page: Some(page(&token)),
        };
        let listed = session
            .call(list, |backend, r| async move {
                backend.social().list_friend_requests(r).await
            })
            .await?;
        let next = listed.page.map(|p| p.next_page_token).unwrap_or_default();
        Ok((listed.requests, next))
    })
    .await
    .map_err(|status| failed(session.user_id(), Step::Listing, &status))?;
    let requests: Vec<Value> = newest_per_pair(requests)
        .iter()
        .map(friend_request_value)
        .collect();
    Ok(vec![reply(
        "FRIEND_REQUEST_LOADED",
        json!({"requests": requests}),
    )])
}

/// The protocol's view of friend requests: at most one between two users, the newest. The
/// original server deleted the earlier accepted or refused request between two users when a
/// new one was sent; the canonical service keeps every request (other protocols and gRPC
/// clients keep their history), so the ones a newer request replaced are left out here,
/// whichever protocol sent them. Request ids grow with time.
fn newest_per_pair(requests: Vec<FriendRequest>) -> Vec<FriendRequest> {
    let pair = |fr: &FriendRequest| {
        let from = fr.from.as_ref().map_or(0, |u| u.id);
        let to = fr.to.as_ref().map_or(0, |u| u.id);
        (from.min(to), from.max(to))
    };
    let mut newest: HashMap<(i64, i64), i64> = HashMap::new();
    for fr in &requests {
        let id = newest.entry(pair(fr)).or_insert(fr.id);
        *id = (*id).max(fr.id);
    }
    requests
        .into_iter()
        .filter(|fr| newest.get(&pair(fr)) == Some(&fr.id))
        .collect()
}

/// ADD_FRIEND_REQUEST / ADD_CONTACT: the names and avatars the client sent are not used.
pub(super) async fn ask(session: &UserSession, target_id: i64) -> Replies {
    let send = SendFriendRequestRequest {
        to: Some(UserRef {
            r#ref: Some(user_ref::Ref::Id(target_id)),
        }),
        note: String::new(),
    };
    let sent = session
        .call(send, |backend, r| async move {
            backend.social().send_friend_request(r).await
        })
        .await
        .map_err(|status| failed(session.user_id(), Step::AddFriend, &status))?;
    Ok(vec![reply(
        "FRIEND_REQUEST_ADDED",
        friend_request_value(&sent),
    )])
}

/// ACCEPT_FRIEND_REQUEST / REFUSE_FRIEND_REQUEST on the WebSocket.
pub(super) async fn answer(session: &UserSession, id: i64, accept: bool) -> Replies {
    let step = if accept { Step::Accept } else { Step::Refuse };
    let fr = respond(session, id, accept)
        .await
        .map_err(|status| failed(session.user_id(), step, &status))?;
    Ok(answered(session, id, accept, fr).await)
}

pub(super) async fn delete(session: &UserSession, target_id: i64) -> Replies {
    let remove = RemoveFriendRequest { user_id: target_id };
    let removed = session
        .call(remove, |backend, r| async move {
            backend.social().remove_friend(r).await
        })
        .await
        .map_err(|status| failed(session.user_id(), Step::DeleteContact, &status))?;
    if !removed.removed {
        return Err(NOT_FRIENDS);
    }
    Ok(vec![reply(
        "CONTACT_DELETED",
        json!({"targetId": target_id}),
    )])
}

impl Conn {
    /// ACCEPT / REFUSE over HTTP name only the request, so they act as the session this
    /// address opened for the request's recipient (the service finds a request for its
    /// recipient only, so at most one session matches); never simply the newest one.
    pub(super) async fn answer_over_http(&self, id: i64, accept: bool) -> Replies {
        let step = if accept { Step::Accept } else { Step::Refuse };
        let mut error = NOT_LOGGED_IN;
        for session in self.shared.http.sessions_at(self.peer) {
            match respond(&session, id, accept).await {
                Ok(fr) => {
                    let replies = answered(&session, id, accept, fr).await;
                    // HTTP answers only the first; the rest go to the accepter's WebSockets.
                    for out in replies.iter().skip(1) {
                        post_to_sockets(&self.shared, session.user_id(), out);
                    }
                    return Ok(replies);
                }
                Err(status) => {
                    error = refused(session.user_id(), step, &status).text(step);
                    if error != NO_SUCH_REQUEST {
                        break;
                    }
                }
            }
        }
        Err(error)
    }

    /// SEARCH_FOR_USER_BY_ID / _NAME: an empty list without a login or when the search fails.
    pub(super) async fn search(&self, query: Query) -> Vec<Out> {
        let Some(session) = self.session_for(None) else {
            return vec![reply("SEARCH_FOR_USER_RESULT", json!({"users": []}))];
        };
        let search = SearchUsersRequest {
            query: Some(query),
            page: Some(page("")),
        };
        let found = session
            .call(search, |backend, r| async move {
                backend.account().search_users(r).await
            })
            .await;
        let users = match found {
            Ok(found) => found.users,
            Err(status) => {
                refused(session.user_id(), Step::Listing, &status);
                self.shared.counters.error("SEARCH");
                Vec::new()
            }
        };
        let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
        let online = online_among(&session, &ids).await;
        let users: Vec<Value> = users
            .iter()
            .map(|u| codec::contact(u.id, &u.username, avatar_of(u), online.contains(&u.id)))
            .collect();
        vec![reply("SEARCH_FOR_USER_RESULT", json!({"users": users}))]
    }
}

/// RespondFriendRequest as `session`'s user.
async fn respond(session: &UserSession, id: i64, accept: bool) -> Result<FriendRequest, Status> {
    let respond = RespondFriendRequestRequest {
        request: Some(respond_friend_request_request::Request::RequestId(id)),
        accept,
    };
    session
        .call(respond, |backend, r| async move {
            backend.social().respond_friend_request(r).await
        })
        .await
}

/// The replies to the request `id` answered as `fr`: FRIEND_REQUEST_ACCEPTED + CONTACT_ADDED
/// (the requester), or FRIEND_REQUEST_REFUSED.
async fn answered(session: &UserSession, id: i64, accept: bool, fr: FriendRequest) -> Vec<Out> {
    if !accept {
        return vec![reply("FRIEND_REQUEST_REFUSED", json!({"id": id}))];
    }
    let requester = fr.from.unwrap_or_default();
    vec![
        reply("FRIEND_REQUEST_ACCEPTED", json!({"id": id})),
        contact_added(session, &requester).await,
    ]
}

/// CONTACT_ADDED for `user`, with whether `session`'s user sees them online.
pub(super) async fn contact_added(
    session: &UserSession,
    user: &rosetta_proto::account::v1::User,
) -> Out {
    let online = online_among(session, &[user.id]).await;
    reply(
        "CONTACT_ADDED",
        codec::contact_added(
            user.id,
            &user.username,
            avatar_of(user),
            online.contains(&user.id),
        ),
    )
}

/// The users among `ids` that the session's user sees online (none when presence fails: the
/// lists are still worth showing).
async fn online_among(session: &UserSession, ids: &[i64]) -> HashSet<i64> {
    if ids.is_empty() {
        return HashSet::new();
    }
    let get = GetPresenceRequest {
        user_ids: ids.iter().copied().take(PAGE as usize).collect(),
    };
    let result = session
        .call(get, |backend, r| async move {
            backend.messaging().get_presence(r).await
        })
        .await;
    match result {
        Ok(response) => response
            .presences
            .into_iter()
            .filter(|p| p.status == PresenceStatus::Online as i32)
            .map(|p| p.user_id)
            .collect(),
        Err(status) => {
            tracing::warn!(user = session.user_id(), %status, "presence; shown offline");
            HashSet::new()
        }
    }
}

pub(super) fn friend_request_value(fr: &FriendRequest) -> Value {
    let from = fr.from.clone().unwrap_or_default();
    let to = fr.to.clone().unwrap_or_default();
    let status = match RequestState::try_from(fr.state) {
        Ok(RequestState::Accepted) => RequestStatus::Accepted,
        Ok(RequestState::Rejected | RequestState::Cancelled) => RequestStatus::Refused,
        _ => RequestStatus::Pending,
    };
    codec::friend_request(&FriendRequestView {
        id: fr.id,
        requester_id: from.id,
        target_id: to.id,
        requester_username: &from.username,
        target_username: &to.username,
        requester_avatar: avatar_of(&from),
        target_avatar: avatar_of(&to),
        status,
    })
}
