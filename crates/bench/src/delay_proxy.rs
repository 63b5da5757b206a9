//! `hangar-bench delay-proxy`: a userspace UDP relay that delays every
//! datagram by a fixed time each way, to put nodes "in other zones" on one
//! machine (the kernel here has no netem). Each client address gets its own
//! socket toward the target, so several nodes can reach one node through
//! the same relay, and the target answers each through the relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::net::{deliver, Outbox};

/// Arguments of `hangar-bench delay-proxy`.
#[derive(Debug, clap::Args)]
pub struct DelayProxyArgs {
    /// Address clients send to.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Address datagrams are relayed to.
    #[arg(long)]
    pub to: SocketAddr,
    /// Delay added in each direction, in milliseconds.
    #[arg(long)]
    pub one_way_ms: u64,
}

/// Relays until killed.
pub fn run(args: &DelayProxyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &DelayProxyArgs) -> anyhow::Result<()> {
    let delay = Duration::from_millis(args.one_way_ms);
    let front = Arc::new(UdpSocket::bind(args.listen).await?);
    let (to_clients, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(deliver(front.clone(), rx));
    // Per client: the outbox of its socket toward the target.
    let mut backs: HashMap<SocketAddr, Outbox> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = front.recv_from(&mut buf).await?;
        let out = match backs.get(&client) {
            Some(out) => out.clone(),
            None => {
                let back = Arc::new(UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?);
                let (out, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(deliver(back.clone(), rx));
                let replies = to_clients.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok((n, _)) = back.recv_from(&mut buf).await {
                        let _ = replies.send((Instant::now() + delay, buf[..n].to_vec(), client));
                    }
                });
                backs.insert(client, out.clone());
                out
            }
        };
        let _ = out.send((Instant::now() + delay, buf[..n].to_vec(), args.to));
    }
}
