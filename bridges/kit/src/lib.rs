//! The parts every bridge shares, so that a bridge crate holds only its protocol: a codec
//! (bytes ⇄ frames) and a session (frames ⇄ the calls made through [`Backend`]).

pub mod backend;
pub mod client;
pub mod counters;
pub mod listen;
pub mod login;
pub mod session;
pub mod settings;
pub mod unread;

pub use backend::{Backend, Endpoints};
pub use counters::Counters;
pub use listen::{Connections, serve_tcp};
pub use login::{Live, LiveLogins, OnClose, end_login};
pub use session::UserSession;
