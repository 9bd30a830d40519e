//! Starting the legacy-protocol bridges: bind their listeners (so a taken port fails the
//! start, not a background task) and run each against a [`Backend`]; stopping them so that
//! their users are signed out before the services go.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use rosetta_account::admin::status::Process;
use rosetta_bridge_kit::{Backend, settings::BridgesSettings, status::ProcessInfo};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bridge {
    /// QtQQ's `cmd|field|…` text protocol (TCP 8263).
    Pipe,
    /// DPC's length-prefixed JSON (TCP 9999 auth, 9998 chat, 9988 files).
    Dpc,
    /// SysOfIMPS's binary protocol (TCP 1200).
    Imps,
    /// OurChat's WebSocket JSON (7777).
    Ourchat,
    /// CloudChat's WebSocket + HTTP JSON (14514).
    Cloudchat,
}

impl Bridge {
    pub const ALL: [Bridge; 5] = [
        Bridge::Pipe,
        Bridge::Dpc,
        Bridge::Imps,
        Bridge::Ourchat,
        Bridge::Cloudchat,
    ];

    pub fn enabled(self, settings: &BridgesSettings) -> bool {
        match self {
            Bridge::Pipe => settings.pipe.enabled,
            Bridge::Dpc => settings.dpc.enabled,
            Bridge::Imps => settings.imps.enabled,
            Bridge::Ourchat => settings.ourchat.enabled,
            Bridge::Cloudchat => settings.cloudchat.enabled,
        }
    }

    /// Binds the bridge's listeners and spawns it; it stops when `closing` is cancelled.
    pub async fn start(
        self,
        settings: &BridgesSettings,
        backend: Backend,
        closing: CancellationToken,
    ) -> anyhow::Result<JoinHandle<()>> {
        let shutdown = closing.cancelled_owned();
        Ok(match self {
            Bridge::Pipe => {
                let listener = bind(settings.pipe.listen, "pipe").await?;
                let settings = settings.pipe.clone();
                tokio::spawn(rosetta_bridge_pipe::serve(
                    listener, backend, settings, shutdown,
                ))
            }
            Bridge::Dpc => {
                let s = settings.dpc.clone();
                let listeners = rosetta_bridge_dpc::Listeners {
                    auth: bind(s.auth_listen, "DPC auth").await?,
                    chat: bind(s.chat_listen, "DPC chat").await?,
                    file: bind(s.file_listen, "DPC file").await?,
                };
                tokio::spawn(rosetta_bridge_dpc::serve(listeners, backend, s, shutdown))
            }
            Bridge::Imps => {
                let listener = bind(settings.imps.listen, "IMPS").await?;
                let settings = settings.imps.clone();
                tokio::spawn(rosetta_bridge_imps::serve(
                    listener, backend, settings, shutdown,
                ))
            }
            Bridge::Ourchat => {
                let listener = bind(settings.ourchat.listen, "OurChat").await?;
                let settings = settings.ourchat.clone();
                tokio::spawn(rosetta_bridge_ourchat::serve(
                    listener, backend, settings, shutdown,
                ))
            }
            Bridge::Cloudchat => {
                let listener = bind(settings.cloudchat.listen, "CloudChat").await?;
                let settings = settings.cloudchat.clone();
                tokio::spawn(rosetta_bridge_cloudchat::serve(
                    listener, backend, settings, shutdown,
                ))
            }
        })
    }
}

/// How long an aborted bridge may take to drop its sessions.
const ABORTED: Duration = Duration::from_secs(1);

/// The bridges one process runs, stopped together, and their status reporter.
pub struct Running {
    closing: CancellationToken,
    bridges: Vec<(Bridge, JoinHandle<()>)>,
    reporter: Option<JoinHandle<()>>,
}

impl Running {
    pub fn new() -> Self {
        Self {
            closing: CancellationToken::new(),
            bridges: Vec::new(),
            reporter: None,
        }
    }

    /// Reports the bridges started on `backend` (it and its clones share one board) every
    /// `interval`, as `process`, until the bridges stop.
    pub fn report(&mut self, backend: Backend, process: &Process, interval: Duration) {
        let info = ProcessInfo {
            id: process.id.clone(),
            version: process.version.clone(),
            host: process.host.clone(),
            started_at_ms: process.started_at_ms,
        };
        let stop = self.closing.clone();
        self.reporter = Some(tokio::spawn(rosetta_bridge_kit::status::report(
            backend, info, interval, stop,
        )));
    }

    pub async fn start(
        &mut self,
        bridge: Bridge,
        settings: &BridgesSettings,
        backend: Backend,
    ) -> anyhow::Result<()> {
        let running = bridge
            .start(settings, backend, self.closing.clone())
            .await?;
        self.bridges.push((bridge, running));
        Ok(())
    }

    /// Stops accepting on every listener and tells every open session to end, then waits up
    /// to `grace` for the sessions to return: each ends its login on the way (OFFLINE, then
    /// Logout), so the services must still serve meanwhile. Sessions still open at the bound
    /// are aborted.
    pub async fn stop(self, grace: Duration) {
        self.closing.cancel();
        if let Some(reporter) = self.reporter {
            // It returns at the cancel, or within its call's deadline.
            let _ = tokio::time::timeout(grace, reporter).await;
        }
        if self.bridges.is_empty() {
            return;
        }
        let started = tokio::time::Instant::now();
        let deadline = started + grace;
        for (bridge, mut running) in self.bridges {
            match tokio::time::timeout_at(deadline, &mut running).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(?bridge, %err, "bridge task failed"),
                Err(_) => {
                    tracing::warn!(
                        ?bridge,
                        ?grace,
                        "sessions still open at the shutdown bound; aborting them"
                    );
                    running.abort();
                    // Gone before the services stop (a task is dropped at its next poll).
                    let _ = tokio::time::timeout(ABORTED, running).await;
                }
            }
        }
        tracing::info!(took = ?started.elapsed(), "bridges stopped");
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} bridge to {addr}"))
}
