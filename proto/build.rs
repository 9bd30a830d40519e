//! Compiles the canonical API with `protox` (pure Rust: no `protoc` needed) and keeps the
//! encoded descriptor set for gRPC server reflection, plus a second set of the `google.rpc`
//! error details (vendored from googleapis under `google/rpc/`, Apache-2.0) so that reflection
//! clients such as `grpcurl` can decode the `ErrorInfo`/`RetryInfo` an error carries. Their
//! Rust types come from `tonic-types`; only the descriptors are needed here.

use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

const PROTOS: &[&str] = &[
    "rosetta/common/v1/common.proto",
    "rosetta/account/v1/account.proto",
    "rosetta/social/v1/social.proto",
    "rosetta/messaging/v1/messaging.proto",
    "rosetta/files/v1/files.proto",
    "rosetta/admin/v1/admin.proto",
    "rosetta/admin/v1/node.proto",
];

/// The error-detail files, under their canonical googleapis names (what clients import).
const ERROR_DETAILS: &[&str] = &["google/rpc/status.proto", "google/rpc/error_details.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS.iter().chain(ERROR_DETAILS) {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("rosetta_descriptor.bin"), fds.encode_to_vec())?;
    // `compile` includes the imports (google/protobuf/any.proto, duration.proto), which a
    // reflection client fetches by file name.
    let details = protox::compile(ERROR_DETAILS, ["."])?;
    fs::write(
        out.join("error_details_descriptor.bin"),
        details.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .codec_path("crate::codec::LeanCodec")
        .compile_fds(fds)?;
    Ok(())
}
