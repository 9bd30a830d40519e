//! The canonical Rosetta gRPC API, generated from the `.proto` files beside this crate.
//!
//! One module per proto package; `FILE_DESCRIPTOR_SET` feeds server reflection so that
//! `grpcurl` and Python clients work without copies of the proto files.

#![allow(clippy::all, clippy::pedantic)]

pub mod codec;
pub mod reason;

pub use reason::{Class, ERROR_DOMAIN, Reason};

/// Encoded `FileDescriptorSet` of every Rosetta proto file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/rosetta_descriptor.bin"));

/// Encoded `FileDescriptorSet` of the `google.rpc` error details (`Status`, `ErrorInfo`,
/// `RetryInfo`, …) and their imports: served by reflection so that clients decode the details
/// of an error without local copies.
pub const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/error_details_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("rosetta.common.v1");
    }
}

pub mod account {
    pub mod v1 {
        tonic::include_proto!("rosetta.account.v1");
    }
}

pub mod social {
    pub mod v1 {
        tonic::include_proto!("rosetta.social.v1");
    }
}

pub mod messaging {
    pub mod v1 {
        tonic::include_proto!("rosetta.messaging.v1");
    }
}

pub mod files {
    pub mod v1 {
        tonic::include_proto!("rosetta.files.v1");
    }
}

pub mod admin {
    pub mod v1 {
        tonic::include_proto!("rosetta.admin.v1");
    }
}

/// Request metadata that is part of the API contract besides `authorization`.
pub mod metadata {
    /// The bridge credential (hex of the shared bridge key): only a bridge holding it may speak
    /// for a legacy client's address.
    pub const BRIDGE_KEY: &str = "x-rosetta-bridge-key";
    /// The address of the legacy client a bridge calls for (an IP address, e.g. `192.0.2.7`);
    /// honoured only next to a valid [`BRIDGE_KEY`].
    pub const CLIENT_ADDR: &str = "x-rosetta-client-addr";
}

/// The system's own identity, in which legacy clients receive operator announcements
/// (`rosetta.messaging.v1.Announcement`). No account can hold any of these: user ids start
/// at 1, the account service refuses the name and never draws the ocid.
pub mod system {
    /// The user id (the pipe uid `00000`, the CloudChat contact 0).
    pub const USER_ID: i64 = 0;
    /// The user name (IMPS and DPC show senders by name).
    pub const NAME: &str = "system";
    /// The OurChat ocid.
    pub const OCID: &str = "0000000000";
}
