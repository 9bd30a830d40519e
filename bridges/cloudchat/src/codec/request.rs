//! The requests of the CloudChat protocol, as the bridge acts on them.

/// A friend request as the client builds it (names and avatars are the client's claim and
/// are not trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFriendRequest {
    pub requester_id: i64,
    pub target_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Login {
        username: String,
        password: String,
    },
    LoginByToken {
        username: String,
        token: String,
    },
    Register {
        username: String,
        password: String,
        email: String,
    },
    UpdateProfile {
        user_id: i64,
        username: Option<String>,
        email: Option<String>,
        avatar: Option<String>,
    },
    Logout {
        user_id: i64,
    },
    LoadContacts {
        user_id: i64,
    },
    SearchById {
        user_id: i64,
    },
    SearchByName {
        username: String,
    },
    LoadFriendRequests {
        user_id: i64,
    },
    AddFriendRequest(NewFriendRequest),
    AcceptFriendRequest {
        id: i64,
    },
    RefuseFriendRequest {
        id: i64,
    },
    DeleteContact {
        user_id: i64,
        target_id: i64,
    },
    AddContact {
        user_id: i64,
        target_id: i64,
    },
    LoadMessages {
        user_id: i64,
        target_id: i64,
    },
    SendMessage {
        temp_id: String,
        sender_id: i64,
        receiver_id: i64,
        content: String,
    },
    MarkRead {
        user_id: i64,
        target_id: i64,
    },
    ClearMessages {
        user_id: i64,
        target_id: i64,
    },
    /// SEND_FILE / SEND_IMAGE: the content is inline text (base64 in practice).
    SendFile {
        temp_id: String,
        sender_id: i64,
        receiver_id: i64,
        name: String,
        content: String,
        image: bool,
    },
    UploadFile {
        path: String,
        data: String,
    },
    HdlInfo {
        user_id: i64,
    },
}

impl Request {
    /// The user the payload says is acting (the real server trusted it; the bridge checks it
    /// against the logged-in user and uses it to find an HTTP client's session).
    pub fn actor(&self) -> Option<i64> {
        match self {
            Request::UpdateProfile { user_id, .. }
            | Request::Logout { user_id }
            | Request::LoadContacts { user_id }
            | Request::LoadFriendRequests { user_id }
            | Request::DeleteContact { user_id, .. }
            | Request::AddContact { user_id, .. }
            | Request::LoadMessages { user_id, .. }
            | Request::MarkRead { user_id, .. }
            | Request::ClearMessages { user_id, .. }
            | Request::HdlInfo { user_id } => Some(*user_id),
            Request::AddFriendRequest(fr) => Some(fr.requester_id),
            Request::SendMessage { sender_id, .. } | Request::SendFile { sender_id, .. } => {
                Some(*sender_id)
            }
            Request::Login { .. }
            | Request::LoginByToken { .. }
            | Request::Register { .. }
            | Request::SearchById { .. }
            | Request::SearchByName { .. }
            | Request::AcceptFriendRequest { .. }
            | Request::RefuseFriendRequest { .. }
            | Request::UploadFile { .. } => None,
        }
    }

    /// What the type's failure reply echoes so that the client can match it to this request:
    /// a send's `tempId` (MESSAGE_SEND_FAILED), an upload's `filePath` (FILE_UPLOADED_FAILED);
    /// empty for the other types, whose failure replies carry only the error.
    pub fn echo(&self) -> &str {
        match self {
            Request::SendMessage { temp_id, .. } | Request::SendFile { temp_id, .. } => temp_id,
            Request::UploadFile { path, .. } => path,
            _ => "",
        }
    }

    /// The type name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Login { .. } => "LOGIN",
            Request::LoginByToken { .. } => "LOGIN_BY_TOKEN",
            Request::Register { .. } => "REGISTER",
            Request::UpdateProfile { .. } => "UPDATE_PROFILE",
            Request::Logout { .. } => "LOGOUT",
            Request::LoadContacts { .. } => "LOAD_CONTACTS",
            Request::SearchById { .. } => "SEARCH_FOR_USER_BY_ID",
            Request::SearchByName { .. } => "SEARCH_FOR_USER_BY_NAME",
            Request::LoadFriendRequests { .. } => "LOAD_FRIEND_REQUEST",
            Request::AddFriendRequest(_) => "ADD_FRIEND_REQUEST",
            Request::AcceptFriendRequest { .. } => "ACCEPT_FRIEND_REQUEST",
            Request::RefuseFriendRequest { .. } => "REFUSE_FRIEND_REQUEST",
            Request::DeleteContact { .. } => "DELETE_CONTACT",
            Request::AddContact { .. } => "ADD_CONTACT",
            Request::LoadMessages { .. } => "LOAD_MESSAGES",
            Request::SendMessage { .. } => "SEND_MESSAGE",
            Request::MarkRead { .. } => "MARK_READ",
            Request::ClearMessages { .. } => "CLEAR_MESSAGES",
            Request::SendFile { image: false, .. } => "SEND_FILE",
            Request::SendFile { image: true, .. } => "SEND_IMAGE",
            Request::UploadFile { .. } => "UPLOAD_FILE",
            Request::HdlInfo { .. } => "HDL_INFO",
        }
    }
}
