//! `rosetta admin announce`: an operator's message to every user on every protocol.

use rosetta_proto::admin::v1::AnnounceRequest;
use serde_json::json;

use super::Api;

/// Sends the announcement; prints it as stored (id, text, sent and expiry times).
pub async fn run(api: &Api, text: String, lifetime_secs: i64) -> anyhow::Result<()> {
    let request = api.request(AnnounceRequest {
        text,
        lifetime_secs,
    })?;
    let reply = api.client().await?.announce(request).await?.into_inner();
    let announcement = reply.announcement.unwrap_or_default();
    println!(
        "{}",
        json!({
            "announced": announcement.id,
            "text": announcement.text,
            "sent_at_ms": announcement.sent_at_ms,
            "expires_at_ms": announcement.expires_at_ms,
        })
    );
    Ok(())
}
