//! Voice clips: the legacy server relayed them chunk by chunk; the bridge stores each one in
//! the files service and sends it as an AUDIO message (imps.md §3.9, §4.8).
//!
//! | client / event | canonical | reply / push |
//! |---|---|---|
//! | C_AUDIO_REQ (chunk) | (buffered) | none |
//! | C_AUDIO_REQ (`KO`) | `LookupUser`, `Upload`, `SendMessage` (AUDIO) | none; S_ERROR 5 when the recipient is not online |
//! | `message` (AUDIO) | `Download` | S_AUDIO_RSP per 200 bytes, then `KO` |

use std::collections::HashMap;

use rosetta_proto::{
    common::v1::{ConversationRef, conversation_ref},
    files::v1::{
        DownloadRequest, UploadMetadata, UploadRequest, Visibility, download_response,
        upload_request,
    },
    messaging::v1::MessageKind,
};
use tonic::Status;

use super::{Close, Ctx, replies::refused};
use crate::codec::{AUDIO_CHUNK, AUDIO_END, ServerMessage};

/// Voice clip bytes buffered per connection (all clips in progress together, friend names
/// included): about a minute of the client's 8 kHz 16-bit audio.
const MAX_CLIP_BYTES: usize = 1 << 20;
/// Clips in progress per connection: the real client ends each clip with `KO` before the next.
const MAX_CLIPS: usize = 4;
/// Largest stored clip pushed to a client.
const MAX_DOWNLOAD: usize = 4 << 20;
/// How stored clips are labelled in the files service.
const CLIP_TYPE: &str = "audio/pcm;rate=8000;channels=1;bits=16;endianness=little";

impl Ctx<'_> {
    pub(super) async fn audio(&mut self, friend: String, data: Vec<u8>) -> Result<(), Close> {
        if data != AUDIO_END {
            if !self.me.clips.add(friend, data) {
                self.io.counters.error("C_AUDIO_REQ");
                tracing::info!("voice clip over the buffer limits, dropped");
            }
            return Ok(());
        }
        let Some(clip) = self.me.clips.finish(&friend).filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        let result = async {
            // Looked up afresh: the clip is uploaded into the conversation with whoever the
            // name stands for, before any send could tell a stale name.
            let to = self.resolve(&friend).await?;
            let file_id = self.upload_clip(to.id, clip).await?;
            self.send_message(to.id, MessageKind::Audio, String::new(), file_id)
                .await
        }
        .await;
        self.answer_send(result).await
    }

    async fn upload_clip(&self, to: i64, clip: Vec<u8>) -> Result<String, Status> {
        let metadata = UploadMetadata {
            name: "voice.pcm".into(),
            size: clip.len() as u64,
            content_type: CLIP_TYPE.into(),
            folder: String::new(),
            visibility: Visibility::Conversation.into(),
            conversation: Some(ConversationRef {
                r#ref: Some(conversation_ref::Ref::UserId(to)),
            }),
        };
        // The whole clip is in memory already, so the default deadline is enough.
        let parts = vec![
            UploadRequest {
                part: Some(upload_request::Part::Metadata(metadata)),
            },
            UploadRequest {
                part: Some(upload_request::Part::Chunk(clip)),
            },
        ];
        let stored = self
            .session()
            .call(futures::stream::iter(parts), |backend, r| async move {
                backend.files().upload(r).await
            })
            .await?;
        Ok(stored.id)
    }

    /// A stored clip as the legacy server relayed it: 200-byte S_AUDIO_RSP chunks, then "KO".
    pub(super) async fn push_clip(
        &mut self,
        from: String,
        file_id: &str,
        time: String,
    ) -> Result<(), Close> {
        let clip = match self.download(file_id).await {
            Ok(clip) => clip,
            Err(status) => {
                refused(self.user_id(), "voice clip download", &status);
                return Ok(());
            }
        };
        for chunk in clip.chunks(AUDIO_CHUNK).chain([AUDIO_END]) {
            self.io
                .send(ServerMessage::Audio {
                    from: from.clone(),
                    data: chunk.to_vec(),
                    time: time.clone(),
                })
                .await?;
        }
        Ok(())
    }

    async fn download(&self, file_id: &str) -> Result<Vec<u8>, Status> {
        let request = DownloadRequest {
            file_id: file_id.to_owned(),
            offset: 0,
        };
        let mut parts = self
            .session()
            .call(request, |backend, r| async move {
                backend.files().download(r).await
            })
            .await?;
        let mut clip = Vec::new();
        while let Some(part) = parts.message().await? {
            if let Some(download_response::Part::Chunk(chunk)) = part.part {
                if clip.len() + chunk.len() > MAX_DOWNLOAD {
                    return Err(Status::resource_exhausted("voice clip too large"));
                }
                clip.extend(chunk);
            }
        }
        Ok(clip)
    }
}

/// Voice clips being received, by friend name, within the per-connection limits: a client
/// cannot grow the bridge's memory by opening clips to ever new names.
#[derive(Default)]
pub(super) struct Clips {
    by_friend: HashMap<String, Vec<u8>>,
    /// Bytes held: names and data.
    held: usize,
}

impl Clips {
    /// Buffers a chunk; false when the limits refuse it (the friend's clip is then dropped).
    /// Empty chunks are ignored, as the legacy server did (imps.md §3.9).
    fn add(&mut self, friend: String, data: Vec<u8>) -> bool {
        if data.is_empty() {
            return true;
        }
        let fresh = !self.by_friend.contains_key(&friend);
        let cost = data.len() + if fresh { friend.len() } else { 0 };
        if (fresh && self.by_friend.len() >= MAX_CLIPS) || self.held + cost > MAX_CLIP_BYTES {
            self.finish(&friend);
            return false;
        }
        self.held += cost;
        self.by_friend.entry(friend).or_default().extend(data);
        true
    }

    /// Takes the friend's clip out.
    fn finish(&mut self, friend: &str) -> Option<Vec<u8>> {
        let clip = self.by_friend.remove(friend)?;
        self.held -= friend.len() + clip.len();
        Some(clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_clips_stay_within_their_limits() {
        let mut clips = Clips::default();
        // Empty chunks open nothing, whatever the name.
        for i in 0..100 {
            assert!(clips.add(format!("nobody{i}"), Vec::new()));
        }
        assert!(clips.by_friend.is_empty());
        assert_eq!(clips.held, 0);
        // At most MAX_CLIPS at once; finishing one frees its place.
        for i in 0..MAX_CLIPS {
            assert!(clips.add(format!("friend{i}"), vec![1]));
        }
        assert!(!clips.add("one too many".into(), vec![1]));
        assert!(clips.add("friend0".into(), vec![2]));
        assert_eq!(clips.finish("friend0"), Some(vec![1, 2]));
        assert!(clips.add("now there is room".into(), vec![1]));
        // Names count against the byte budget.
        let mut clips = Clips::default();
        let name = "n".repeat(MAX_CLIP_BYTES);
        assert!(!clips.add(name, vec![1]));
        assert_eq!(clips.held, 0);
        assert!(clips.add("bob".into(), vec![0; MAX_CLIP_BYTES - 3]));
        assert!(!clips.add("bob".into(), vec![0]));
        assert_eq!((clips.finish("bob"), clips.held), (None, 0));
    }
}
