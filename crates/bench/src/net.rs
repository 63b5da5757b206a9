//! `hangar-bench net`: the node-to-node transport.
//!
//! Three measurements, each over the real QUIC transport of `hangar-net`, with
//! client and server in this process:
//! - `loopback`: round trip of an empty RPC against a raw QUIC ping (open a
//!   stream, send one byte, read one byte back) on the same kind of
//!   connection, sequentially.
//! - `bulk`: latency of small metadata RPCs, idle and while one bulk body
//!   (user-data priority) streams over the same connection.
//! - `lossy`: the same through a userspace UDP proxy that delays every datagram
//!   by half the RTT each way and drops a share of them at random (this kernel
//!   has no `sch_netem`); the bulk transfer is bounded in time.
//!
//! Prints one JSON object per measurement.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use hangar_net::quic::{Congestion, QuicConfig, QuicTransport};
use hangar_net::{
    CallOptions, IncomingBody, Message, NodeKey, Priority, Reply, Rpc, RpcSecret, Transport,
};
use hangar_util::clock::Clock;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::stats::{round3, sort_samples, Latency};

/// Options of the `net` subcommand.
#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// Which measurement: loopback, bulk, lossy or all.
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// Sequential calls per latency sample set.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(10..=1_000_000))]
    pub calls: u64,
    /// Bytes of the bulk transfer on loopback.
    #[arg(long, default_value_t = 1 << 30)]
    pub bulk_bytes: u64,
    /// Round-trip time the lossy proxy adds, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub rtt_ms: u64,
    /// Share of datagrams the lossy proxy drops.
    #[arg(long, default_value_t = 0.01)]
    pub loss: f64,
    /// Seconds the bulk transfer runs through the lossy proxy.
    #[arg(long, default_value_t = 15)]
    pub lossy_secs: u64,
    /// Bandwidth of the shaped link, in Mbit/s.
    #[arg(long, default_value_t = 100)]
    pub shaped_mbit: u64,
    /// Round-trip time of the shaped link, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub shaped_rtt_ms: u64,
    /// Priority of the bulk transfer: data (user uploads) or background
    /// (resync, rebalancing).
    #[arg(long, default_value = "data", value_parser = ["data", "background"])]
    pub bulk_priority: String,
    /// Congestion controller: cubic or bbr.
    #[arg(long, default_value = "cubic")]
    pub congestion: String,
    /// CPU priority of the threads that carry bulk transfers: idle or normal.
    #[arg(long, default_value = "idle", value_parser = ["idle", "normal"])]
    pub bulk_cpu_priority: String,
    /// Run the node that answers in a child process (`hangar-bench net-serve`),
    /// as a second machine would, instead of in this process.
    #[arg(long)]
    pub server_process: bool,
    /// With `--server-process`: pin the child to this CPU (`taskset`). Pin this
    /// process to another one (`taskset -c N hangar-bench net ...`) to give
    /// each node a core of its own.
    #[arg(long, requires = "server_process")]
    pub server_cpu: Option<usize>,
}

/// Options of the `net-serve` subcommand: the answering node of
/// `net --server-process`, in its own process.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The cluster secret, in hex.
    #[arg(long)]
    pub secret: String,
    /// Congestion controller: cubic or bbr.
    #[arg(long, default_value = "cubic")]
    pub congestion: String,
    /// CPU priority of the threads that carry bulk transfers: idle or normal.
    #[arg(long, default_value = "idle", value_parser = ["idle", "normal"])]
    pub bulk_cpu_priority: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Small;
impl Message for Small {
    const ENDPOINT: &'static str = "bench/small";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = ();
}

#[derive(Clone, Serialize, Deserialize)]
struct Bulk;
impl Message for Bulk {
    const ENDPOINT: &'static str = "bench/bulk";
    const PRIORITY: Priority = Priority::Data;
    type Response = u64;
}

/// Runs the chosen measurements.
pub fn run(args: &NetArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    runtime.block_on(async {
        let all = args.scenario == "all";
        if all || args.scenario == "loopback" {
            loopback(args).await?;
        }
        if all || args.scenario == "bulk" {
            bulk(args, None).await?;
        }
        if all || args.scenario == "shaped" {
            let proxy = Proxy {
                one_way: Duration::from_millis(args.shaped_rtt_ms / 2),
                loss: 0.0,
                bytes_per_sec: Some(args.shaped_mbit * 1_000_000 / 8),
            };
            bulk(args, Some(proxy)).await?;
        }
        if all || args.scenario == "lossy" {
            let proxy = Proxy {
                one_way: Duration::from_millis(args.rtt_ms / 2),
                loss: args.loss,
                bytes_per_sec: None,
            };
            bulk(args, Some(proxy)).await?;
        }
        Ok(())
    })
}

fn loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn transport(
    secret: &RpcSecret,
    congestion: &str,
    bulk_cpu_priority: &str,
) -> anyhow::Result<(NodeKey, Arc<QuicTransport>)> {
    let key = NodeKey::generate()?;
    let mut config = QuicConfig::new(loopback_addr());
    config.bulk_cpu_priority = bulk_cpu_priority.parse()?;
    config.congestion = match congestion {
        "cubic" => Congestion::Cubic,
        "bbr" => Congestion::Bbr,
        other => anyhow::bail!("--congestion {other}: expected cubic or bbr"),
    };
    let t = QuicTransport::bind(&key, secret, &config)?;
    Ok((key, t))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn latency(mut samples: Vec<f64>) -> Latency {
    sort_samples(&mut samples);
    Latency::of_sorted(&samples)
}

async fn loopback(args: &NetArgs) -> anyhow::Result<()> {
    let secret = RpcSecret::generate();
    // Raw: one byte each way on a fresh stream of one QUIC connection.
    let (_ka, ta) = transport(&secret, &args.congestion, &args.bulk_cpu_priority)?;
    let (kb, tb) = transport(&secret, &args.congestion, &args.bulk_cpu_priority)?;
    let server_addr = tb.bound_addr()?;
    tokio::spawn(async move {
        while let Some(conn) = tb.accept().await {
            tokio::spawn(async move {
                while let Ok(accepted) = conn.accept_stream().await {
                    let (mut send, mut recv) = accepted.stream;
                    tokio::spawn(async move {
                        let mut b = [0u8; 1];
                        if recv.read_exact(&mut b).await.is_ok() {
                            let _ = send.write_all(&b).await;
                            let _ = send.shutdown().await;
                        }
                    });
                }
            });
        }
    });
    let conn = ta.connect(server_addr, kb.id()).await?;
    let mut raw = Vec::new();
    for _ in 0..args.calls {
        let t = Instant::now();
        let (mut send, mut recv) = conn.open_stream(Priority::Control).await?;
        send.write_all(&[7]).await?;
        send.shutdown().await?;
        let mut b = [0u8; 1];
        recv.read_exact(&mut b).await?;
        raw.push(ms(t.elapsed()));
    }
    // RPC: an empty typed request and response.
    let (a, b, bid) = rpc_pair(args, &secret, None).await?;
    let mut rpc = Vec::new();
    for _ in 0..args.calls {
        let t = Instant::now();
        a.call(bid, &Small).await?;
        rpc.push(ms(t.elapsed()));
    }
    let raw = latency(raw);
    let rpc = latency(rpc);
    let report = serde_json::json!({
        "scenario": "loopback",
        "calls": args.calls,
        "raw_quic_ping_ms": raw,
        "rpc_ms": rpc,
        "rpc_over_raw_p50": round3(rpc.p50 / raw.p50),
    });
    println!("{report}");
    a.shutdown();
    b.shutdown();
    Ok(())
}

/// The node that answers: in this process, or a child process (which exits
/// when its standard input closes, i.e. with this process).
enum Server {
    InProcess(Arc<Rpc>),
    Child(std::process::Child),
}

impl Server {
    fn shutdown(self) {
        match self {
            Server::InProcess(rpc) => rpc.shutdown(),
            Server::Child(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Two RPC endpoints over QUIC, connected (through `proxy` if given), with the
/// bench handlers on the second, in this process or in a child process.
/// Returns (client, server, server id).
async fn rpc_pair(
    args: &NetArgs,
    secret: &RpcSecret,
    proxy: Option<Proxy>,
) -> anyhow::Result<(Arc<Rpc>, Server, hangar_net::NodeId)> {
    let (_ka, ta) = transport(secret, &args.congestion, &args.bulk_cpu_priority)?;
    let a = Rpc::new(ta, Clock::system());
    let (mut server_addr, server, bid) = if args.server_process {
        let (addr, child, id) = spawn_server(args, secret)?;
        (addr, Server::Child(child), id)
    } else {
        let (kb, tb) = transport(secret, &args.congestion, &args.bulk_cpu_priority)?;
        let addr = tb.bound_addr()?;
        let b = Rpc::new(tb, Clock::system());
        serve(&b);
        (addr, Server::InProcess(b), kb.id())
    };
    if let Some(p) = proxy {
        server_addr = p.start(server_addr).await?;
    }
    a.connect(server_addr, bid).await?;
    Ok((a, server, bid))
}

/// Starts `hangar-bench net-serve` (pinned with `taskset` if asked) and reads
/// its address and node id.
fn spawn_server(
    args: &NetArgs,
    secret: &RpcSecret,
) -> anyhow::Result<(SocketAddr, std::process::Child, hangar_net::NodeId)> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("own executable")?;
    let mut command = match args.server_cpu {
        Some(cpu) => {
            let mut c = std::process::Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let mut child = command
        .args(["net-serve", "--congestion", &args.congestion])
        .args(["--bulk-cpu-priority", &args.bulk_cpu_priority])
        .args(["--secret", &secret.to_hex()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting net-serve")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some(addr), Some(id)) = (words.next(), words.next()) else {
        let _ = child.kill();
        anyhow::bail!("net-serve printed {line:?}, expected an address and a node id");
    };
    let id = hangar_net::NodeId::from_hex(id).context("net-serve's node id")?;
    Ok((addr.parse().context("net-serve's address")?, child, id))
}

/// Runs the answering node until standard input closes.
pub fn serve_process(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    runtime.block_on(async {
        let secret = RpcSecret::from_hex(&args.secret)?;
        let (key, t) = transport(&secret, &args.congestion, &args.bulk_cpu_priority)?;
        let addr = t.bound_addr()?;
        let rpc = Rpc::new(t, Clock::system());
        serve(&rpc);
        println!("{addr} {}", key.id().to_hex());
        tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut buf = [0u8; 64];
            while std::io::stdin().read(&mut buf).is_ok_and(|n| n > 0) {}
        })
        .await?;
        rpc.shutdown();
        Ok(())
    })
}

/// Registers the bench handlers: `Small` answers at once, `Bulk` counts the
/// bytes of its body.
fn serve(b: &Rpc) {
    b.register(|_from, _: Small| async { Ok(()) });
    b.register_streaming(|_from, _: Bulk, body: Option<IncomingBody>| async move {
        let mut n = 0u64;
        if let Some(mut body) = body {
            while let Some(chunk) = body.chunk().await.map_err(|e| e.to_string())? {
                n += chunk.len() as u64;
            }
        }
        Ok(Reply::new(n))
    });
}

/// Small-RPC latency idle and during a bulk transfer, optionally through a
/// lossy, delaying proxy.
async fn bulk(args: &NetArgs, proxy: Option<Proxy>) -> anyhow::Result<()> {
    let secret = RpcSecret::generate();
    let (a, b, bid) = rpc_pair(args, &secret, proxy).await?;
    let (calls, limit_bytes, limit_time) = match proxy {
        None => (args.calls, args.bulk_bytes, Duration::from_secs(600)),
        Some(_) => (
            (args.calls / 10).max(50),
            u64::MAX,
            Duration::from_secs(args.lossy_secs),
        ),
    };
    let mut idle = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        a.call(bid, &Small).await?;
        idle.push(ms(t.elapsed()));
    }
    // The bulk body: 1 MiB chunks until the byte or time limit.
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let mut sent = 0u64;
    let body = futures::stream::poll_fn(move |_| {
        if sent >= limit_bytes || started.elapsed() >= limit_time {
            return std::task::Poll::Ready(None);
        }
        let n = (limit_bytes - sent).min(chunk.len() as u64);
        sent += n;
        std::task::Poll::Ready(Some(Ok(chunk.slice(..n as usize))))
    })
    .boxed();
    let priority = match args.bulk_priority.as_str() {
        "background" => Priority::Background,
        _ => Priority::Data,
    };
    let bulk_task = {
        let a = a.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let options = CallOptions {
                timeout: Duration::from_secs(900),
                priority: Some(priority),
            };
            let r = a.call_with(bid, &Bulk, options, Some(body)).await;
            done.store(true, Ordering::SeqCst);
            r.map(|(n, _)| n)
        })
    };
    // Let the transfer ramp up, then sample until it ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut busy = Vec::new();
    while !done.load(Ordering::SeqCst) && busy.len() < 1_000_000 {
        let t = Instant::now();
        a.call(bid, &Small).await?;
        busy.push(ms(t.elapsed()));
    }
    let received = bulk_task.await??;
    let secs = started.elapsed().as_secs_f64();
    let idle = latency(idle);
    let busy_count = busy.len();
    let busy = latency(busy);
    let report = serde_json::json!({
        "scenario": match proxy {
            None => "bulk",
            Some(p) if p.bytes_per_sec.is_some() => "shaped",
            Some(_) => "lossy",
        },
        "congestion": args.congestion,
        "bulk_priority": args.bulk_priority,
        "proxy": proxy.map(|p| serde_json::json!({
            "rtt_ms": ms(p.one_way * 2),
            "loss": p.loss,
            "mbit_per_s": p.bytes_per_sec.map(|b| b * 8 / 1_000_000),
        })),
        "bulk_mib": round3(received as f64 / (1 << 20) as f64),
        "bulk_mib_per_s": round3(received as f64 / (1 << 20) as f64 / secs),
        "idle_ms": idle,
        "during_bulk_ms": busy,
        "calls_during_bulk": busy_count,
        "server_process": args.server_process,
        "bulk_cpu_priority": args.bulk_cpu_priority,
        "p99_during_over_idle": round3(busy.p99 / idle.p99),
        "p50_during_over_idle": round3(busy.p50 / idle.p50),
    });
    println!("{report}");
    a.shutdown();
    b.shutdown();
    Ok(())
}

/// A UDP relay adding delay and loss, and optionally limiting bandwidth: each
/// direction is a FIFO queue drained at `bytes_per_sec`, dropping datagrams
/// that find more than [`QUEUE_LIMIT`] bytes waiting (a router's tail drop).
#[derive(Clone, Copy, Debug)]
struct Proxy {
    one_way: Duration,
    loss: f64,
    bytes_per_sec: Option<u64>,
}

/// Bytes a shaped direction queues before dropping.
const QUEUE_LIMIT: u64 = 256 << 10;

/// One direction's bandwidth limit: when the last queued datagram leaves.
#[derive(Default)]
struct Shaper {
    busy_until: Option<Instant>,
}

impl Shaper {
    /// When a datagram of `len` bytes arriving now leaves the queue, or `None`
    /// if the queue is full.
    fn departure(&mut self, len: usize, bytes_per_sec: Option<u64>) -> Option<Instant> {
        let now = Instant::now();
        let Some(rate) = bytes_per_sec else {
            return Some(now);
        };
        let start = self.busy_until.map_or(now, |t| t.max(now));
        let queued = start.saturating_duration_since(now).as_secs_f64() * rate as f64;
        if queued > QUEUE_LIMIT as f64 {
            return None;
        }
        let done = start + Duration::from_secs_f64(len as f64 / rate as f64);
        self.busy_until = Some(done);
        Some(done)
    }
}

impl Proxy {
    /// Starts relaying to `server`; returns the address clients should use.
    async fn start(self, server: SocketAddr) -> anyhow::Result<SocketAddr> {
        let front = Arc::new(UdpSocket::bind(loopback_addr()).await?);
        let back = Arc::new(UdpSocket::bind(loopback_addr()).await?);
        let addr = front.local_addr()?;
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        // Client → server.
        let (to_server, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(deliver(back.clone(), rx));
        let (from_front, client_w) = (front.clone(), client.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let mut shaper = Shaper::default();
            while let Ok((n, from)) = from_front.recv_from(&mut buf).await {
                *client_w
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(from);
                self.relay(&mut shaper, &buf[..n], server, &to_server);
            }
        });
        // Server → client.
        let (to_client, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(deliver(front.clone(), rx));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let mut shaper = Shaper::default();
            while let Ok((n, _)) = back.recv_from(&mut buf).await {
                let dest = *client
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(dest) = dest {
                    self.relay(&mut shaper, &buf[..n], dest, &to_client);
                }
            }
        });
        Ok(addr)
    }

    /// Drops `datagram` at random, or queues it behind the shaper and the delay.
    fn relay(&self, shaper: &mut Shaper, datagram: &[u8], dest: SocketAddr, out: &Outbox) {
        if self.loss > 0.0 && rand::thread_rng().gen_bool(self.loss) {
            return;
        }
        if let Some(at) = shaper.departure(datagram.len(), self.bytes_per_sec) {
            let _ = out.send((at + self.one_way, datagram.to_vec(), dest));
        }
    }
}

/// Datagrams waiting for their delivery time.
pub(crate) type Outbox = tokio::sync::mpsc::UnboundedSender<(Instant, Vec<u8>, SocketAddr)>;

/// Sends each datagram at its time (a constant delay keeps them in order).
pub(crate) async fn deliver(
    socket: Arc<UdpSocket>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(Instant, Vec<u8>, SocketAddr)>,
) {
    while let Some((at, bytes, dest)) = rx.recv().await {
        tokio::time::sleep_until(at.into()).await;
        let _ = socket.send_to(&bytes, dest).await;
    }
}
