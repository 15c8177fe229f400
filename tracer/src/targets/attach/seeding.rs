//! The TCP sockets a process had open before pytrace attached: the kernel
//! programs learn them (an id and their endpoints, by file descriptor) and
//! the pipeline their endpoints, so a request on a connection made before
//! attach still names its server.

use pytrace_core::events::{ConnKey, Endpoints, Event};
use tracer_common::{SEEDED_SOCKET_ID_BIT, SOCKET_ID_BIT, SocketState, TLS_UNKNOWN};

use crate::pipeline::Pipeline;
use crate::probes::{ProbeError, Probes};
use crate::targets::inspect::sockets;

/// Ids given to the sockets found open at attach, counting up.
#[derive(Debug, Default)]
pub struct SeededSockets {
    last: u64,
}

impl SeededSockets {
    /// Tells the kernel about `pid`'s open TCP sockets, and the pipeline
    /// about their endpoints.
    pub fn seed(&mut self, probes: &mut Probes, pipeline: &mut Pipeline, pid: u32) -> Result<(), ProbeError> {
        for socket in sockets::open_sockets(pid) {
            self.last += 1;
            let conn_id = SOCKET_ID_BIT | SEEDED_SOCKET_ID_BIT | self.last;
            let addrs = socket.to_raw();
            probes.seed_socket(pid, socket.fd, SocketState { conn_id, addrs, tls: TLS_UNKNOWN, _pad: 0 })?;
            if socket.peer.is_some() {
                let endpoints = Endpoints::from_raw(&addrs);
                pipeline.event(&Event::SocketInfo { conn: ConnKey { pid, conn_id }, endpoints });
            }
        }
        Ok(())
    }
}
