//! The process's descriptor limit: every connection of every bridge and of the gRPC port is
//! a descriptor, and the soft limit most systems start a process with (1,024) is reached by
//! about a thousand idle clients, after which no port accepts anything. So the soft limit is
//! raised to the hard one at start.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs both (call after logging is
/// set up). A failure is logged, not fatal: the node still runs, with fewer connections.
pub fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct they are given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let err = std::io::Error::last_os_error();
        tracing::warn!(%err, "reading the descriptor limit failed");
        return;
    }
    let soft = limit.rlim_cur;
    if soft < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            let err = std::io::Error::last_os_error();
            tracing::warn!(%err, soft, hard = limit.rlim_max, "raising the descriptor limit failed");
            return;
        }
    }
    tracing::info!(
        was = soft,
        soft = limit.rlim_max,
        hard = limit.rlim_max,
        "descriptor limit"
    );
}
