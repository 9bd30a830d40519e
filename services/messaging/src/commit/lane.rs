//! A lane: the task that takes the sends queued for it and writes them in batches, answering
//! each caller with its own outcome.
//!
//! Idempotency without a pre-read: the batch's INSERT skips rows whose (sender,
//! `client_message_id`) is already stored. When it stored fewer rows than it was given, the
//! batch is rolled back (its seqs would have gaps), the skipped sends are answered with the
//! stored messages (`duplicate`), and the rest are written again. Retries are rare, and each
//! round removes at least one send, so this ends.
//!
//! Any other failure of a batch of several jobs rolls it back and writes its jobs one by
//! one, so that a bad send fails only itself.
//!
//! Read marks queued with the sends ([`super::marks`]) are written in the same transaction,
//! after them.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use rosetta_kit::ApiError;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Job, MAX_BATCH, MarkJob, Recipient, SendJob, Stored, batch};
use crate::{log::Events, policy::Policy};

/// One lane's share of the writer.
pub(super) struct Lane {
    pub db: DatabaseConnection,
    pub events: Arc<Events>,
    pub policy: Arc<Policy>,
    pub fallbacks: Arc<AtomicU64>,
    /// Groups above this many members are fanned out on read (0: none).
    pub fanout_max_members: usize,
}

impl Lane {
    /// Runs until `stopping`: then refuses new jobs, writes those already queued (each was
    /// accepted from a caller who waits for its answer), and ends.
    pub async fn run(self, mut jobs: mpsc::Receiver<Job>, stopping: CancellationToken) {
        let mut taken = Vec::with_capacity(MAX_BATCH);
        loop {
            let count = tokio::select! {
                biased;
                () = stopping.cancelled(), if !jobs.is_closed() => {
                    jobs.close();
                    continue;
                }
                count = jobs.recv_many(&mut taken, MAX_BATCH) => count,
            };
            if count == 0 {
                break;
            }
            crate::meters::queued(-(count as f64));
            crate::meters::batch_written(count);
            let (mut sends, mut marks) = (Vec::new(), Vec::new());
            for job in taken.drain(..) {
                match job {
                    Job::Send(send) => sends.push(send),
                    Job::Mark(mark) => marks.push(mark),
                }
            }
            if let Err((sends, marks, err)) = settle(&self, sends, marks).await {
                self.one_by_one(sends, marks, err).await;
            }
        }
    }

    /// After a failed batch: writes each of its unanswered jobs alone, so that a bad send
    /// fails only itself.
    async fn one_by_one(&self, sends: Vec<SendJob>, marks: Vec<MarkJob>, err: DbErr) {
        if sends.len() + marks.len() == 1 {
            answer_all(sends, marks, &err);
            return;
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%err, sends = sends.len(), marks = marks.len(), "batch write failed; writing each job alone");
        for job in sends {
            let span = job.span.clone();
            let alone = settle(self, vec![job], Vec::new()).instrument(span);
            if let Err((sends, marks, err)) = alone.await {
                answer_all(sends, marks, &err);
            }
        }
        for job in marks {
            if let Err((sends, marks, err)) = settle(self, Vec::new(), vec![job]).await {
                answer_all(sends, marks, &err);
            }
        }
    }
}

/// A failed batch's unanswered jobs.
type Unsettled = (Vec<SendJob>, Vec<MarkJob>, DbErr);

/// Writes `jobs` and `marks` as one batch, setting duplicates aside until the batch commits;
/// answers every job it settles. On a failure other than a duplicate, hands back the jobs not
/// yet answered.
async fn settle(lane: &Lane, mut jobs: Vec<SendJob>, marks: Vec<MarkJob>) -> Result<(), Unsettled> {
    loop {
        let drafts: Vec<&super::Draft> = jobs.iter().map(|job| &job.draft).collect();
        let wanted: Vec<super::Mark> = marks.iter().map(|job| job.mark).collect();
        let written = batch::write(
            &lane.db,
            &lane.policy,
            &drafts,
            &wanted,
            lane.fanout_max_members,
        );
        match written.await {
            Ok(batch::Written::Committed {
                outcomes,
                read,
                deliveries,
                group_deliveries,
            }) => {
                lane.events.wake(deliveries).await;
                lane.events.wake_groups(group_deliveries).await;
                let stored = outcomes
                    .iter()
                    .filter(|outcome| matches!(outcome, Ok(stored) if !stored.duplicate))
                    .count();
                crate::meters::messages_sent(stored);
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    // The caller may have gone (a cancelled call): the message is stored all
                    // the same, and a retry with the same client_message_id finds it.
                    let _ = job.reply.send(outcome);
                }
                for (job, read) in marks.into_iter().zip(read) {
                    let _ = job.reply.send(Ok(read));
                }
                return Ok(());
            }
            Ok(batch::Written::Duplicates(found)) => {
                let mut found = found.into_iter().peekable();
                let mut rest = Vec::with_capacity(jobs.len());
                for (index, job) in jobs.into_iter().enumerate() {
                    match found.next_if(|(at, _)| *at == index) {
                        Some((_, message)) => {
                            let _ = job.reply.send(Ok(Stored {
                                message,
                                duplicate: true,
                                recipient: Recipient::Unread,
                            }));
                        }
                        None => rest.push(job),
                    }
                }
                if rest.is_empty() && marks.is_empty() {
                    return Ok(());
                }
                jobs = rest;
            }
            Err(err) => return Err((jobs, marks, err)),
        }
    }
}

/// A write failure as the callers see it: internal (the cause is logged, never sent).
fn answer_all(sends: Vec<SendJob>, marks: Vec<MarkJob>, err: &DbErr) {
    for job in sends {
        let _ = job.reply.send(Err(ApiError::internal(err)));
    }
    for job in marks {
        let _ = job.reply.send(Err(ApiError::internal(err)));
    }
}
