//! The parts every bridge shares, so that a bridge crate holds only its protocol: a codec
//! (bytes ⇄ frames) and a session (frames ⇄ the calls made through [`Backend`]).

pub mod admission;
pub mod backend;
pub mod calls;
pub mod client;
pub mod counters;
pub mod events;
pub mod listen;
pub mod login;
pub mod mux;
pub mod paging;
pub mod read_marks;
pub mod registry;
pub mod resume;
pub mod session;
pub mod settings;
pub mod status;
pub mod unread;

pub use admission::{HTTP_UNAVAILABLE, Refusal};
pub use backend::{Backend, CALL_DEADLINE, Endpoints};
pub use calls::CallCounts;
pub use client::ClientHandle;
pub use counters::Counters;
pub use events::{EventStream, next_event};
pub use listen::{Connections, Handshake, Listening, serve_tcp};
pub use login::{Live, LiveLogins, OnClose, end_login};
pub use paging::all_pages;
pub use read_marks::{LoginMarks, ReadMarks};
pub use registry::{LoginRegistry, Registered, kicked};
pub use resume::Resume;
pub use session::UserSession;
pub use status::Board;
