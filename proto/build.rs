//! Compiles the canonical API with `protox` (pure Rust: no `protoc` needed) and keeps the
//! encoded descriptor set for gRPC server reflection.

use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

const PROTOS: &[&str] = &[
    "rosetta/common/v1/common.proto",
    "rosetta/account/v1/account.proto",
    "rosetta/social/v1/social.proto",
    "rosetta/messaging/v1/messaging.proto",
    "rosetta/files/v1/files.proto",
    "rosetta/admin/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("rosetta_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .codec_path("crate::codec::LeanCodec")
        .compile_fds(fds)?;
    Ok(())
}
