use std::net::SocketAddr;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}; pick another address with --listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "refusing to start with --auth open on {addr}: open authentication accepts any \
         signature, so it is only allowed on a loopback address (e.g. 127.0.0.1); \
         use --auth verify or listen on loopback"
    )]
    OpenAuthNotLoopback { addr: SocketAddr },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
}
