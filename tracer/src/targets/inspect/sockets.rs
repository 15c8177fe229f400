//! The TCP sockets a process has open at attach time, from `/proc`: each
//! `/proc/PID/fd/N` that links to `socket:[INODE]`, matched by inode with the
//! entries of `/proc/PID/net/tcp` and `tcp6` (the process's own network
//! namespace). Sockets created later are tracked by the kernel programs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::process::proc_path;

/// TCP states in `/proc/net/tcp` (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 0x01;
const TCP_LISTEN: u8 = 0x0a;

/// One line of `/proc/net/tcp{,6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub inode: u64,
}

/// An open TCP socket of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSocket {
    pub fd: u32,
    pub local: SocketAddr,
    /// `None` for listening sockets.
    pub peer: Option<SocketAddr>,
    /// The process accepted this connection (its local port is one it listens on).
    pub accepted: bool,
}

/// Parses `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn parse_tcp_table(text: &str) -> Vec<TcpEntry> {
    text.lines().skip(1).filter_map(parse_tcp_line).collect()
}

fn parse_tcp_line(line: &str) -> Option<TcpEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(TcpEntry {
        local: parse_address(fields.get(1)?)?,
        remote: parse_address(fields.get(2)?)?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` (IPv4, each 32-bit word in host order) or the 32-hex-digit IPv6 form.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| ip.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()))
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes.as_slice()).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Joins a process's socket descriptors (fd → inode) with its TCP tables.
pub fn join_sockets(fds: &[(u32, u64)], tables: &[TcpEntry]) -> Vec<OpenSocket> {
    let by_inode: HashMap<u64, &TcpEntry> = tables.iter().map(|e| (e.inode, e)).collect();
    let listening_ports: Vec<u16> = fds
        .iter()
        .filter_map(|(_, inode)| by_inode.get(inode))
        .filter(|e| e.state == TCP_LISTEN)
        .map(|e| e.local.port())
        .collect();
    let mut sockets: Vec<OpenSocket> = fds
        .iter()
        .filter_map(|(fd, inode)| {
            let entry = by_inode.get(inode)?;
            let connected = entry.state == TCP_ESTABLISHED;
            Some(OpenSocket {
                fd: *fd,
                local: entry.local,
                peer: connected.then_some(entry.remote),
                accepted: connected && listening_ports.contains(&entry.local.port()),
            })
        })
        .collect();
    sockets.sort_by_key(|s| s.fd);
    sockets
}

/// The process's open TCP sockets (best effort: unreadable entries are skipped).
pub fn open_sockets(pid: u32) -> Vec<OpenSocket> {
    let Ok(entries) = std::fs::read_dir(proc_path(pid, "fd")) else { return Vec::new() };
    let fds: Vec<(u32, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(entry.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
            Some((fd, inode))
        })
        .collect();
    let tables: Vec<TcpEntry> = ["net/tcp", "net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(proc_path(pid, table)).ok())
        .flat_map(|text| parse_tcp_table(&text))
        .collect();
    join_sockets(&fds, &tables)
}

impl OpenSocket {
    /// The kernel ABI form of this socket's endpoints.
    pub fn to_raw(self) -> tracer_common::SocketAddrs {
        let mut raw = tracer_common::SocketAddrs {
            family: if self.local.is_ipv4() { tracer_common::AF_INET } else { tracer_common::AF_INET6 },
            local_port: self.local.port(),
            role: if self.accepted { tracer_common::ROLE_SERVER } else { tracer_common::ROLE_CLIENT },
            ..Default::default()
        };
        write_ip(&mut raw.local_addr, self.local.ip());
        if let Some(peer) = self.peer {
            raw.peer_port = peer.port();
            write_ip(&mut raw.peer_addr, peer.ip());
        }
        raw
    }
}

fn write_ip(out: &mut [u8; 16], ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => *out = v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:2CAA 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A0F2 00000000000000000000000001000000:2CAA 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn parses_both_tables() {
        let v4 = parse_tcp_table(TCP);
        assert_eq!(v4.len(), 3);
        assert_eq!(v4[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((v4[0].state, v4[0].inode), (TCP_LISTEN, 1001));
        assert_eq!(v4[2].remote, "127.0.0.1:11434".parse().unwrap());
        let v6 = parse_tcp_table(TCP6);
        assert_eq!(v6[0].remote, "[::1]:11434".parse().unwrap());
        assert!(parse_tcp_table("header\ngarbage line\n").is_empty());
    }

    #[test]
    fn joins_descriptors_and_tells_accepted_from_outgoing() {
        let tables: Vec<TcpEntry> = parse_tcp_table(TCP).into_iter().chain(parse_tcp_table(TCP6)).collect();
        let sockets = join_sockets(&[(3, 1001), (4, 1002), (5, 1003), (6, 2001), (7, 9999)], &tables);
        assert_eq!(sockets.len(), 4);
        assert_eq!((sockets[0].fd, sockets[0].peer), (3, None));
        assert!(sockets[1].accepted, "port 8080 is one the process listens on");
        assert!(!sockets[2].accepted);
        assert_eq!(sockets[3].peer, Some("[::1]:11434".parse().unwrap()));
    }
}
