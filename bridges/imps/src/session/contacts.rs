//! Friends: the friend list, friend requests, presence, and the names users go by.
//!
//! | client / event | canonical | reply / push |
//! |---|---|---|
//! | C_FRIENDLIST_REFURBISH_REQ | `ListContacts` (every page) | S_FRIENDLIST_REFURBISH_RSP |
//! | C_ADDFRIEND_REQ | `LookupUser`, `SendFriendRequest` | none (as the legacy server) |
//! | C_ADDFRIEND_RSP | `LookupUser`, `RespondFriendRequest` | none |
//! | login | `ListFriendRequests` (incoming, pending) | S_ADDFRIEND_REQ each |
//! | `friend_request_received` | | S_ADDFRIEND_REQ |
//! | `friend_request_answered` | | S_ADDFRIEND_RSP to the requester |
//! | `presence_changed` | `GetProfiles` for an unknown name | S_STATUS_NOTIFY, once per change |

use rosetta_bridge_kit::all_pages;
use rosetta_proto::Reason;
use rosetta_proto::{
    account::v1::{GetProfilesRequest, LookupUserRequest, User},
    common::v1::{Location, PageRequest, UserRef, user_ref},
    social::v1::{
        Contact, Direction, FriendRequest, ListContactsRequest, ListFriendRequestsRequest,
        Presence, PresenceStatus, RequestState, RespondFriendRequestRequest,
        SendFriendRequestRequest, respond_friend_request_request,
    },
};
use tokio::time::Instant;
use tonic::Status;

use super::{Close, Ctx, local_time, replies::refused};
use crate::{
    codec::{Friend, OFFLINE, ONLINE, ServerMessage},
    names::{alias_id, display_name},
};

/// A friend to call, by id, and whether the id came from memory (it may be stale).
#[derive(Clone, Copy)]
pub(super) struct Recipient {
    pub id: i64,
    pub cached: bool,
}

/// Contacts read per ListContacts page, and pages read at most.
const CONTACT_PAGE: u32 = 500;
const MAX_CONTACT_PAGES: usize = 20;
/// Pending friend requests pushed at login.
const PENDING_REQUESTS: u32 = 50;

fn wire_status(presence: &Presence) -> u8 {
    if presence.status == PresenceStatus::Online as i32 {
        ONLINE
    } else {
        OFFLINE
    }
}

impl Ctx<'_> {
    pub(super) async fn friend_list(&mut self) -> Result<(), Close> {
        let session = self.me.session.clone();
        let contacts = all_pages(MAX_CONTACT_PAGES, |page_token| {
            let session = session.clone();
            async move {
                let request = ListContactsRequest {
                    page: Some(PageRequest {
                        page_size: CONTACT_PAGE,
                        page_token,
                    }),
                };
                let page = session
                    .call(request, |backend, r| async move {
                        backend.social().list_contacts(r).await
                    })
                    .await?;
                let next = page.page.map(|p| p.next_page_token).unwrap_or_default();
                Ok((page.contacts, next))
            }
        })
        .await;
        let contacts = match contacts {
            Ok(contacts) => contacts,
            Err(status) => {
                // The client keeps its list if no reply comes; an empty one would wipe it.
                refused(self.user_id(), "friend list", &status);
                return Ok(());
            }
        };
        let ids: std::collections::HashSet<i64> = contacts
            .iter()
            .filter_map(|c| c.user.as_ref().map(|u| u.id))
            .collect();
        self.me.names.keep_friends(&ids);
        let friends = contacts
            .into_iter()
            .filter_map(|contact| self.friend(contact))
            .collect();
        self.io.send(ServerMessage::Friends(friends)).await
    }

    /// A contact as a friend-list entry; its status counts as shown.
    fn friend(&mut self, contact: Contact) -> Option<Friend> {
        let user = contact.user?;
        let name = self.remember(&user);
        let presence = contact.presence.unwrap_or_default();
        let status = wire_status(&presence);
        self.me.shown.insert(user.id, status);
        let location = presence.location.unwrap_or_default();
        Some(Friend {
            name,
            status,
            email: contact.email,
            time: fix_time(&location),
            // Whole micro-degrees, as the client holds them (an int in GeoPoint).
            lat_e6: (location.latitude * 1e6).round(),
            lon_e6: (location.longitude * 1e6).round(),
        })
    }

    pub(super) async fn add_friend(&mut self, friend: &str) -> Result<(), Close> {
        // The legacy server never answers C_ADDFRIEND_REQ; failures are only logged.
        let result = async {
            let target = self.resolve(friend).await?;
            let request = SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(target.id)),
                }),
                note: String::new(),
            };
            self.session()
                .call(request, |backend, r| async move {
                    backend.social().send_friend_request(r).await
                })
                .await
        }
        .await;
        if let Err(status) = result {
            self.io.counters.error("C_ADDFRIEND_REQ");
            refused(self.user_id(), "friend request", &status);
        }
        Ok(())
    }

    pub(super) async fn answer_friend(&mut self, friend: &str, accept: bool) -> Result<(), Close> {
        let result = async {
            let requester = self.resolve(friend).await?;
            let request = RespondFriendRequestRequest {
                request: Some(respond_friend_request_request::Request::FromUserId(
                    requester.id,
                )),
                accept,
            };
            self.session()
                .call(request, |backend, r| async move {
                    backend.social().respond_friend_request(r).await
                })
                .await
        }
        .await;
        if let Err(status) = result {
            self.io.counters.error("C_ADDFRIEND_RSP");
            refused(self.user_id(), "friend request answer", &status);
        }
        Ok(())
    }

    /// Friend requests that arrived while the user was away (the legacy server dropped them).
    pub(super) async fn pending_requests(&mut self) -> Result<(), Close> {
        let request = ListFriendRequestsRequest {
            direction: Direction::Incoming.into(),
            include_answered: false,
            page: Some(PageRequest {
                page_size: PENDING_REQUESTS,
                page_token: String::new(),
            }),
        };
        let listed = self
            .session()
            .call(request, |backend, r| async move {
                backend.social().list_friend_requests(r).await
            })
            .await;
        let requests = match listed {
            Ok(listed) => listed.requests,
            Err(status) => {
                refused(self.user_id(), "pending friend requests", &status);
                return Ok(());
            }
        };
        for request in requests {
            self.push_friend_request(request).await?;
        }
        Ok(())
    }

    pub(super) async fn push_friend_request(
        &mut self,
        request: FriendRequest,
    ) -> Result<(), Close> {
        let Some(from) = request.from.filter(|_| self.me.asked.insert(request.id)) else {
            return Ok(());
        };
        let from = self.remember(&from);
        self.io.send(ServerMessage::FriendRequest { from }).await
    }

    /// The answer to a request the user made.
    pub(super) async fn push_friend_answer(&mut self, request: FriendRequest) -> Result<(), Close> {
        let (Some(from), Some(to)) = (request.from, request.to) else {
            return Ok(());
        };
        if from.id != self.user_id() {
            return Ok(());
        }
        let from = self.remember(&to);
        let accepted = request.state == RequestState::Accepted as i32;
        self.io
            .send(ServerMessage::FriendAnswer { from, accepted })
            .await
    }

    pub(super) async fn push_presence(&mut self, presence: Presence) -> Result<(), Close> {
        if presence.user_id == self.user_id() {
            return Ok(());
        }
        let status = wire_status(&presence);
        if self.me.shown.insert(presence.user_id, status) == Some(status) {
            return Ok(());
        }
        let user = self.name_of(presence.user_id).await;
        self.io.send(ServerMessage::Status { user, status }).await
    }

    pub(super) fn remember(&mut self, user: &User) -> String {
        let name = display_name(user);
        self.me.names.learn(user.id, &name, Instant::now());
        name
    }

    /// The friend an IMPS name stands for: from the connection's [`crate::names::NameBook`]
    /// while it trusts the name, else looked up. Only for calls the services allow between
    /// friends only.
    pub(super) async fn recipient(&mut self, name: &str) -> Result<Recipient, Status> {
        if let Some(id) = self.me.names.id(name, Instant::now()) {
            return Ok(Recipient { id, cached: true });
        }
        let user = self.resolve(name).await?;
        Ok(Recipient {
            id: user.id,
            cached: false,
        })
    }

    /// After a call to `to` ended with `result`: whom to try again, if it failed in a way a
    /// stale name explains (the id taken from memory is no friend any more, or gone) and a
    /// fresh lookup names someone else; the lookup's refusal if the name names nobody now
    /// (what the call would have met without the memory). The stale id is forgotten.
    pub(super) async fn retry<T>(
        &mut self,
        name: &str,
        to: Recipient,
        result: &Result<T, Status>,
    ) -> Result<Option<Recipient>, Status> {
        let Err(status) = result else {
            return Ok(None);
        };
        let stale = matches!(
            Reason::of(status),
            Some(Reason::NotFriends | Reason::NotFound | Reason::Blocked)
        );
        if !to.cached || !stale {
            return Ok(None);
        }
        self.me.names.forget(to.id);
        let fresh = self.resolve(name).await?;
        Ok((fresh.id != to.id).then_some(Recipient {
            id: fresh.id,
            cached: false,
        }))
    }

    /// The user an IMPS name stands for: a user name, or a `#<id>` alias, looked up.
    pub(super) async fn resolve(&mut self, name: &str) -> Result<User, Status> {
        let lookup = |r| LookupUserRequest {
            user: Some(UserRef { r#ref: Some(r) }),
        };
        let call = |request| {
            self.session().call(request, |backend, r| async move {
                backend.account().lookup_user(r).await
            })
        };
        let found = match call(lookup(user_ref::Ref::Username(name.to_owned()))).await {
            Err(status) if Reason::of(&status) == Some(Reason::NotFound) => match alias_id(name) {
                Some(id) => call(lookup(user_ref::Ref::Id(id))).await,
                None => Err(status),
            },
            other => other,
        }?;
        self.remember(&found);
        Ok(found)
    }

    /// The IMPS name of user `id`.
    pub(super) async fn name_of(&mut self, id: i64) -> String {
        if let Some(name) = self.me.names.name(id) {
            return name.to_owned();
        }
        let profiles = self
            .session()
            .call(
                GetProfilesRequest { user_ids: vec![id] },
                |backend, r| async move { backend.account().get_profiles(r).await },
            )
            .await;
        match profiles.map(|p| p.users.into_iter().next()) {
            Ok(Some(user)) => self.remember(&user),
            Ok(None) => format!("#{id}"),
            Err(status) => {
                refused(self.user_id(), "profile lookup", &status);
                format!("#{id}")
            }
        }
    }
}

/// A friend-list location time: the fix time the friend's phone reported, as the legacy
/// database printed it (`yyyy-MM-dd HH:mm:ss.0`); the server's receive time otherwise; empty
/// when there is no location.
fn fix_time(location: &Location) -> String {
    let client = location.client_time.trim();
    if chrono::NaiveDateTime::parse_from_str(client, "%Y-%m-%d %H:%M:%S").is_ok() {
        format!("{client}.0")
    } else if location.received_at_ms > 0 {
        format!("{}.0", local_time(location.received_at_ms))
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_times_as_the_legacy_database_printed_them() {
        let mut location = Location {
            client_time: "2012-01-14 20:40:00".into(),
            ..Default::default()
        };
        assert_eq!(fix_time(&location), "2012-01-14 20:40:00.0");
        location.client_time = "garbage".into();
        assert_eq!(fix_time(&location), "");
        location.received_at_ms = 1_000;
        assert!(fix_time(&location).ends_with(".0"));
    }
}
