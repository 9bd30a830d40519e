//! gRPC handlers: unwrap the request, take identity from the auth layer, call the domain.

use std::sync::Arc;

use rosetta_auth::Caller;
use rosetta_proto::social::v1::{social_service_server::SocialService, *};
use tonic::{Request, Response, Status};

use crate::Social;

/// Every social call needs a bearer token.
pub const PUBLIC_METHODS: &[&str] = &[];

pub struct SocialGrpc {
    social: Arc<Social>,
}

impl SocialGrpc {
    pub fn new(social: Arc<Social>) -> Self {
        Self { social }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The caller and the message of a request.
fn split<T>(req: Request<T>) -> Result<(Caller, T), Status> {
    let caller = Caller::of(&req)?;
    Ok((caller, req.into_inner()))
}

#[tonic::async_trait]
impl SocialService for SocialGrpc {
    async fn send_friend_request(
        &self,
        req: Request<SendFriendRequestRequest>,
    ) -> Reply<FriendRequest> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.send_friend_request(&caller, req).await?,
        ))
    }

    async fn respond_friend_request(
        &self,
        req: Request<RespondFriendRequestRequest>,
    ) -> Reply<FriendRequest> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.respond_friend_request(&caller, req).await?,
        ))
    }

    async fn cancel_friend_request(
        &self,
        req: Request<CancelFriendRequestRequest>,
    ) -> Reply<FriendRequest> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social
                .cancel_friend_request(&caller, req.request_id)
                .await?,
        ))
    }

    async fn list_friend_requests(
        &self,
        req: Request<ListFriendRequestsRequest>,
    ) -> Reply<ListFriendRequestsResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_friend_requests(&caller, req).await?,
        ))
    }

    async fn remove_friend(
        &self,
        req: Request<RemoveFriendRequest>,
    ) -> Reply<RemoveFriendResponse> {
        let (caller, req) = split(req)?;
        let removed = self.social.remove_friend(&caller, req.user_id).await?;
        Ok(Response::new(RemoveFriendResponse { removed }))
    }

    async fn list_contacts(
        &self,
        req: Request<ListContactsRequest>,
    ) -> Reply<ListContactsResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_contacts(&caller, req).await?,
        ))
    }

    async fn block_user(&self, req: Request<BlockUserRequest>) -> Reply<BlockUserResponse> {
        let (caller, req) = split(req)?;
        self.social.block_user(&caller, req.user_id).await?;
        Ok(Response::new(BlockUserResponse {}))
    }

    async fn unblock_user(&self, req: Request<UnblockUserRequest>) -> Reply<UnblockUserResponse> {
        let (caller, req) = split(req)?;
        self.social.unblock_user(&caller, req.user_id).await?;
        Ok(Response::new(UnblockUserResponse {}))
    }

    async fn list_blocked(&self, req: Request<ListBlockedRequest>) -> Reply<ListBlockedResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(self.social.list_blocked(&caller, req).await?))
    }

    async fn create_group(&self, req: Request<CreateGroupRequest>) -> Reply<Group> {
        let (caller, req) = split(req)?;
        Ok(Response::new(self.social.create_group(&caller, req).await?))
    }

    async fn join_public_group(&self, req: Request<JoinPublicGroupRequest>) -> Reply<Group> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.join_public_group(&caller, req).await?,
        ))
    }

    async fn get_group(&self, req: Request<GetGroupRequest>) -> Reply<Group> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.get_group(&caller, req.group_id).await?,
        ))
    }

    async fn list_group_members(
        &self,
        req: Request<ListGroupMembersRequest>,
    ) -> Reply<ListGroupMembersResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_group_members(&caller, req).await?,
        ))
    }

    async fn list_my_groups(
        &self,
        req: Request<ListMyGroupsRequest>,
    ) -> Reply<ListMyGroupsResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_my_groups(&caller, req).await?,
        ))
    }

    async fn request_join_group(
        &self,
        req: Request<RequestJoinGroupRequest>,
    ) -> Reply<JoinRequest> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.request_join_group(&caller, req).await?,
        ))
    }

    async fn respond_join_request(
        &self,
        req: Request<RespondJoinRequestRequest>,
    ) -> Reply<JoinRequest> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.respond_join_request(&caller, req).await?,
        ))
    }

    async fn list_join_requests(
        &self,
        req: Request<ListJoinRequestsRequest>,
    ) -> Reply<ListJoinRequestsResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_join_requests(&caller, req).await?,
        ))
    }

    async fn add_group_members(
        &self,
        req: Request<AddGroupMembersRequest>,
    ) -> Reply<AddGroupMembersResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.add_group_members(&caller, req).await?,
        ))
    }

    async fn list_group_invitations(
        &self,
        req: Request<ListGroupInvitationsRequest>,
    ) -> Reply<ListGroupInvitationsResponse> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.list_group_invitations(&caller, req).await?,
        ))
    }

    async fn respond_group_invitation(
        &self,
        req: Request<RespondGroupInvitationRequest>,
    ) -> Reply<GroupInvitation> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.respond_group_invitation(&caller, req).await?,
        ))
    }

    async fn cancel_group_invitation(
        &self,
        req: Request<CancelGroupInvitationRequest>,
    ) -> Reply<GroupInvitation> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social.cancel_group_invitation(&caller, req).await?,
        ))
    }

    async fn leave_group(&self, req: Request<LeaveGroupRequest>) -> Reply<LeaveGroupResponse> {
        let (caller, req) = split(req)?;
        self.social.leave_group(&caller, req.group_id).await?;
        Ok(Response::new(LeaveGroupResponse {}))
    }

    async fn kick_member(&self, req: Request<KickMemberRequest>) -> Reply<KickMemberResponse> {
        let (caller, req) = split(req)?;
        self.social
            .kick_member(&caller, req.group_id, req.user_id)
            .await?;
        Ok(Response::new(KickMemberResponse {}))
    }

    async fn transfer_ownership(&self, req: Request<TransferOwnershipRequest>) -> Reply<Group> {
        let (caller, req) = split(req)?;
        Ok(Response::new(
            self.social
                .transfer_ownership(&caller, req.group_id, req.new_owner_id)
                .await?,
        ))
    }

    async fn set_admin(&self, req: Request<SetAdminRequest>) -> Reply<SetAdminResponse> {
        let (caller, req) = split(req)?;
        self.social.set_admin(&caller, req).await?;
        Ok(Response::new(SetAdminResponse {}))
    }

    async fn mute_member(&self, req: Request<MuteMemberRequest>) -> Reply<MuteMemberResponse> {
        let (caller, req) = split(req)?;
        self.social.mute_member(&caller, req).await?;
        Ok(Response::new(MuteMemberResponse {}))
    }

    async fn update_group(&self, req: Request<UpdateGroupRequest>) -> Reply<Group> {
        let (caller, req) = split(req)?;
        Ok(Response::new(self.social.update_group(&caller, req).await?))
    }

    async fn dissolve_group(
        &self,
        req: Request<DissolveGroupRequest>,
    ) -> Reply<DissolveGroupResponse> {
        let (caller, req) = split(req)?;
        self.social.dissolve_group(&caller, req.group_id).await?;
        Ok(Response::new(DissolveGroupResponse {}))
    }
}
