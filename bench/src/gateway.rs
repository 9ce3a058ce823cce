//! `gateway`: the forward-proxy gateway against the same upstream reached directly. The upstream
//! is tinyproxy (Debian's, a peer tool nobody on this team wrote) on loopback, the only proxy
//! the service knows (a managed one); the origin is a tiny HTTP server in this process. Each
//! run measures, alternating direct and through the gateway:
//!
//! * latency per request, one request per connection (tinyproxy closes after each anyway):
//!   p50 and p99 of `GATEWAY_LATENCY_REQUESTS` sequential `GET /small`;
//! * throughput of a 100 MB download through a CONNECT tunnel;
//! * memory per idle tunnel: RSS before and after `IDLE_TUNNELS` open tunnels (the service's
//!   and, direct, tinyproxy's);
//! * requests/s with `RPS_CONNECTIONS` clients for `RPS_PHASE`: through the gateway with
//!   keep-alive, tinyproxy direct with a connection per request (it keeps none alive).

use super::*;
use std::process::{Child, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const GATEWAY_LATENCY_REQUESTS: usize = 2_000;
const BIG: u64 = 100_000_000;
const IDLE_TUNNELS: usize = 1_000;
const RPS_CONNECTIONS: usize = 32;
const RPS_PHASE: Duration = Duration::from_secs(5);
const TOKEN: &str = "bench-gateway";
const SMALL_BODY: &[u8] = b"ok";

/// Where a client's requests go.
#[derive(Clone, Copy)]
struct Via {
    port: u16,
    /// `Proxy-Authorization` needed (the gateway).
    auth: bool,
}

impl Via {
    fn auth_header(self) -> &'static str {
        // base64("bench:bench-gateway")
        if self.auth {
            "Proxy-Authorization: Basic YmVuY2g6YmVuY2gtZ2F0ZXdheQ==\r\n"
        } else {
            ""
        }
    }
}

/// tinyproxy as a child process, killed on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
}

impl Tinyproxy {
    async fn start(dir: &Path) -> Result<Tinyproxy> {
        let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("tinyproxy is not installed (apt-get install tinyproxy)")?;
        let port = free_port(&HashSet::new())?;
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients {}\nAllow 127.0.0.1\n\
                 LogLevel Critical\nDisableViaHeader Yes\n",
                4 * IDLE_TUNNELS
            ),
        )?;
        let child = Command::new(binary)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        let deadline = Instant::now() + START_DEADLINE;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("tinyproxy did not listen".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Tinyproxy { child, port })
    }

    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The origin: `GET /small` → `ok`, `GET /big/N` → N zero bytes, keep-alive; a connection that
/// sends nothing is held open (the idle tunnels).
async fn start_origin() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_origin(stream));
        }
    });
    Ok(port)
}

async fn serve_origin(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let chunk = vec![0u8; 64 * 1024];
    loop {
        let Some(end) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        let path = path
            .rsplit_once("://")
            .map_or(path, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
        let size: u64 = match path.strip_prefix("/big/") {
            Some(n) => n.parse().unwrap_or(0),
            None => SMALL_BODY.len() as u64,
        };
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if path.starts_with("/big/") {
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if stream.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
        } else if stream.write_all(SMALL_BODY).await.is_err() {
            return;
        }
    }
}

/// Reads until a whole head is in `buf`; its length with the blank line. `None` at EOF.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Reads one answer: its status and body length (the body is read and dropped).
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, u64)> {
    let end = read_head(stream, buf)
        .await
        .ok_or("the connection closed before an answer")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {head:?}"))?;
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut left = length.saturating_sub(buf.len() as u64);
    buf.drain(..buf.len().min(length as usize));
    let mut tmp = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Err("the connection closed inside the body".into());
        }
        let body = (n as u64).min(left);
        left -= body;
        if body < n as u64 {
            buf.extend_from_slice(&tmp[body as usize..n]);
        }
    }
    Ok((status, length))
}

/// `GET http://origin/path` with `Connection: close`, on a new connection.
async fn get_once(via: Via, origin: u16, path: &str) -> Result<u64> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, via.port)).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET http://127.0.0.1:{origin}{path} HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n{}\
         Connection: close\r\n\r\n",
        via.auth_header()
    );
    s.write_all(req.as_bytes()).await?;
    let (status, len) = read_answer(&mut s, &mut Vec::new()).await?;
    if status != 200 {
        return Err(format!("GET {path} through :{} answered {status}", via.port).into());
    }
    Ok(len)
}

/// Opens a CONNECT tunnel to the origin.
async fn tunnel(via: Via, origin: u16) -> Result<TcpStream> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, via.port)).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "CONNECT 127.0.0.1:{origin} HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n{}\r\n",
        via.auth_header()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let end = read_head(&mut s, &mut buf)
        .await
        .ok_or("the tunnel closed before its answer")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("CONNECT through :{} answered {head:?}", via.port).into());
    }
    Ok(s)
}

/// Seconds to download `BIG` bytes through a tunnel.
async fn download(via: Via, origin: u16) -> Result<f64> {
    let started = Instant::now();
    let mut s = tunnel(via, origin).await?;
    let req = format!("GET /big/{BIG} HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let (status, len) = read_answer(&mut s, &mut Vec::new()).await?;
    if (status, len) != (200, BIG) {
        return Err(format!("the download answered {status} with {len} bytes").into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Sorted latencies in µs of `n` sequential one-connection requests.
async fn latencies(via: Via, origin: u16, n: usize) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get_once(via, origin, "/small").await?;
        out.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    out.sort_unstable();
    Ok(out)
}

/// Requests/s with `RPS_CONNECTIONS` clients; `keep_alive` reuses each client's connection.
async fn rps(via: Via, origin: u16, keep_alive: bool) -> Result<f64> {
    let deadline = Instant::now() + RPS_PHASE;
    let workers = (0..RPS_CONNECTIONS).map(|_| {
        tokio::spawn(async move {
            let mut done = 0u64;
            if !keep_alive {
                while Instant::now() < deadline {
                    get_once(via, origin, "/small").await?;
                    done += 1;
                }
                return Ok::<u64, Error>(done);
            }
            let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, via.port)).await?;
            s.set_nodelay(true)?;
            let req = format!(
                "GET http://127.0.0.1:{origin}/small HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n{}\r\n",
                via.auth_header()
            );
            let mut buf = Vec::new();
            while Instant::now() < deadline {
                s.write_all(req.as_bytes()).await?;
                let (status, _) = read_answer(&mut s, &mut buf).await?;
                if status != 200 {
                    return Err(format!("keep-alive GET answered {status}").into());
                }
                done += 1;
            }
            Ok(done)
        })
    });
    let started = Instant::now();
    let mut total = 0;
    for w in futures_join(workers.collect()).await {
        total += w.map_err(|e| format!("a client task: {e}"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, String>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.map_err(|e| e.to_string()));
    }
    out
}

/// KiB of RSS per tunnel: `rss` before and after `IDLE_TUNNELS` tunnels are open and settled.
async fn per_tunnel_kib(via: Via, origin: u16, rss: impl Fn() -> Option<u64>) -> Result<f64> {
    let before = rss().ok_or("no RSS")?;
    let mut open = Vec::with_capacity(IDLE_TUNNELS);
    for _ in 0..IDLE_TUNNELS {
        open.push(tunnel(via, origin).await?);
    }
    // Let the other side settle (its tasks parked, buffers allocated).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss().ok_or("no RSS")?;
    drop(open);
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(after.saturating_sub(before) as f64 / IDLE_TUNNELS as f64)
}

fn gateway_config(port: u16, gateway: u16, db_url: &str, upstream: u16, origin: u16) -> String {
    format!(
        r#"sources = []

[server]
bind = "127.0.0.1:{port}"

[database]
url = {db}

[validation]
check_url = "http://127.0.0.1:{origin}/small"
expect_status = 200
revalidate_interval_secs = 31536000

[[managed_proxies]]
name = "tinyproxy"
url = "http://127.0.0.1:{upstream}"
kind = "datacenter"
cost_per_gb = 1.0
priority = 1

[gateway]
enabled = true
bind = "127.0.0.1:{gateway}"
token = "{TOKEN}"
allow_private = true
allowed_ports = [{origin}]
max_connections = {max}
max_connections_per_client = {max}
"#,
        db = toml_string(db_url),
        max = 4 * IDLE_TUNNELS,
    )
}

/// One run's numbers.
#[derive(Default)]
struct Run {
    p50_direct: f64,
    p50_gateway: f64,
    p99_direct: f64,
    p99_gateway: f64,
    mb_s_direct: f64,
    mb_s_gateway: f64,
    kib_gateway: f64,
    kib_tinyproxy: f64,
    rps_direct: f64,
    rps_gateway: f64,
}

/// tinyproxy, the service in front of it, and the two ways to the origin, started fresh.
struct World {
    tiny: Tinyproxy,
    service: Service,
    direct: Via,
    through: Via,
    _dir: TempDir,
}

async fn start_world(binary: &Path, origin: u16, run: usize) -> Result<World> {
    let dir = TempDir::create(&format!("gateway-{run}"))?;
    let tiny = Tinyproxy::start(dir.path()).await?;
    let port = free_port(&HashSet::from([tiny.port]))?;
    let gateway = free_port(&HashSet::from([tiny.port, port]))?;
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        gateway_config(port, gateway, &db, tiny.port, origin),
    )?;
    let mut service = Service::start(binary, &config, port, dir.path().join("gateway.log"))?;
    service.wait_healthy().await?;
    let direct = Via {
        port: tiny.port,
        auth: false,
    };
    let through = Via {
        port: gateway,
        auth: true,
    };
    // The managed proxy serves once checked.
    let deadline = Instant::now() + START_DEADLINE;
    while get_once(through, origin, "/small").await.is_err() {
        service.ensure_running()?;
        if Instant::now() > deadline {
            return Err(format!(
                "the gateway never served through tinyproxy; log: {}",
                service.log_tail()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(World {
        tiny,
        service,
        direct,
        through,
        _dir: dir,
    })
}

pub(crate) async fn bench(binary: &Path, runs: usize) -> Result<()> {
    let origin = start_origin().await?;
    let mut all = Vec::with_capacity(runs);
    let mut peak = Vec::with_capacity(runs);
    let mut stops = Vec::with_capacity(runs);
    for run in 1..=runs {
        // Fresh processes each run: memory freed by one measurement and reused by the next
        // would make the idle tunnels look free. The tunnels are measured first.
        let mut w = start_world(binary, origin, run).await?;
        let (direct, through) = (w.direct, w.through);
        let mut r = Run {
            kib_tinyproxy: per_tunnel_kib(direct, origin, || w.tiny.rss_kib()).await?,
            kib_gateway: per_tunnel_kib(through, origin, || w.service.rss_kib()).await?,
            ..Run::default()
        };
        // Warm both paths.
        latencies(direct, origin, 200).await?;
        latencies(through, origin, 200).await?;
        let d = latencies(direct, origin, GATEWAY_LATENCY_REQUESTS).await?;
        let g = latencies(through, origin, GATEWAY_LATENCY_REQUESTS).await?;
        (r.p50_direct, r.p99_direct) = (percentile(&d, 0.5) as f64, percentile(&d, 0.99) as f64);
        (r.p50_gateway, r.p99_gateway) = (percentile(&g, 0.5) as f64, percentile(&g, 0.99) as f64);
        r.mb_s_direct = BIG as f64 / 1e6 / download(direct, origin).await?;
        r.mb_s_gateway = BIG as f64 / 1e6 / download(through, origin).await?;
        r.rps_direct = rps(direct, origin, false).await?;
        r.rps_gateway = rps(through, origin, true).await?;
        w.service.ensure_running()?;
        peak.push(w.service.peak_rss_kib().unwrap_or(0) as f64);
        stops.push(w.service.stop().await?.describe());
        eprintln!(
            "gateway run {run}/{runs}: p50 {:.0}/{:.0} µs, p99 {:.0}/{:.0} µs, {:.0}/{:.0} MB/s, \
             {:.1}/{:.1} KiB per tunnel, {:.0}/{:.0} req/s (gateway/direct)",
            r.p50_gateway,
            r.p50_direct,
            r.p99_gateway,
            r.p99_direct,
            r.mb_s_gateway,
            r.mb_s_direct,
            r.kib_gateway,
            r.kib_tinyproxy,
            r.rps_gateway,
            r.rps_direct
        );
        all.push(r);
    }
    let med = |f: &dyn Fn(&Run) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
    println!("### Gateway (tinyproxy as the upstream, reached directly and through the gateway)\n");
    println!("Medians of {runs} runs (fresh processes each); each ratio is taken within a run.\n");
    println!("| measure | direct (tinyproxy) | through the gateway | ratio / added |");
    println!("|---|---|---|---|");
    println!(
        "| latency p50, one request per connection | {:.0} µs | {:.0} µs | +{:.0} µs |",
        med(&|r| r.p50_direct),
        med(&|r| r.p50_gateway),
        med(&|r| r.p50_gateway - r.p50_direct)
    );
    println!(
        "| latency p99 | {:.0} µs | {:.0} µs | +{:.0} µs |",
        med(&|r| r.p99_direct),
        med(&|r| r.p99_gateway),
        med(&|r| r.p99_gateway - r.p99_direct)
    );
    println!(
        "| 100 MB through a CONNECT tunnel | {:.0} MB/s | {:.0} MB/s | {:.2}× |",
        med(&|r| r.mb_s_direct),
        med(&|r| r.mb_s_gateway),
        med(&|r| r.mb_s_gateway / r.mb_s_direct)
    );
    println!(
        "| memory per idle tunnel ({IDLE_TUNNELS} open; RSS of tinyproxy / of the service) | {:.1} KiB | {:.1} KiB | {:.2}× |",
        med(&|r| r.kib_tinyproxy),
        med(&|r| r.kib_gateway),
        med(&|r| r.kib_gateway / r.kib_tinyproxy.max(0.1))
    );
    println!(
        "| requests/s, {RPS_CONNECTIONS} clients (gateway: keep-alive; tinyproxy keeps none) | {:.0} | {:.0} | {:.2}× |",
        med(&|r| r.rps_direct),
        med(&|r| r.rps_gateway),
        med(&|r| r.rps_gateway / r.rps_direct)
    );
    stops.sort();
    stops.dedup();
    println!(
        "\nThe service's peak RSS (median) {}; stopped after SIGTERM in {}.\n",
        mib(median(&peak) as u64),
        stops.join(", ")
    );
    Ok(())
}
