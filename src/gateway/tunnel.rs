//! Tunnels (HTTP `CONNECT` and SOCKS5 alike): the first upstream of the plan that gives a way
//! to the target within `gateway.connect_timeout_ms`, then the bytes carried both ways until
//! either side closes, counted exactly and told every second.

use super::route::{self, failed, verdict_of, Account, Refusal, Verdict};
use super::upstream::{self, authority, Meter, Metered};
use super::Ctx;
use crate::domain::gateway::Options;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How often an open tunnel tells its traffic.
const TELL_EVERY: Duration = Duration::from_secs(1);

/// A tunnel through an upstream, open and counted.
pub struct Open {
    stream: Metered<TcpStream>,
    /// What the upstream sent past its answer, for the client.
    leftover: Vec<u8>,
    account: Account,
}

/// Opens a tunnel to `host:port` through the first upstream that gives one.
pub async fn open(ctx: &Arc<Ctx>, host: &str, port: u16, opts: &Options) -> Result<Open, Refusal> {
    route::check_target(ctx, host, port).await?;
    let plan = route::plan(ctx, opts)?;
    let target = authority(host, port);
    for (i, up) in plan.upstreams.iter().enumerate() {
        if i > 0 {
            ctx.shared.gateway.failovers.fetch_add(1, Ordering::Relaxed);
        }
        let dial = upstream::tunnel(&up.endpoint, host, port);
        let verdict = match tokio::time::timeout(ctx.settings.connect_timeout, dial).await {
            Ok(Ok((stream, leftover))) => {
                route::settle(ctx, up, &plan, &Verdict::Passed, &target);
                let meter = Arc::new(Meter::default());
                meter.add(0, leftover.len() as u64);
                let mut account = Account::new(ctx.clone(), up, &plan, meter.clone());
                account.served();
                return Ok(Open {
                    stream: Metered::new(stream, meter),
                    leftover,
                    account,
                });
            }
            Ok(Err(e)) => verdict_of(e, up),
            Err(_) => Verdict::Failed(format!(
                "no tunnel within gateway.connect_timeout_ms ({})",
                ctx.settings.connect_timeout.as_millis()
            )),
        };
        failed(ctx, up, &plan, verdict, &target, Arc::default());
    }
    Err(Refusal::Failed(format!(
        "{} upstreams tried, none reached {target}",
        plan.upstreams.len()
    )))
}

/// Carries the tunnel's bytes both ways until either side closes.
pub async fn carry<C: AsyncRead + AsyncWrite + Unpin>(mut client: C, open: Open) {
    let Open {
        mut stream,
        leftover,
        mut account,
    } = open;
    if !leftover.is_empty() && client.write_all(&leftover).await.is_err() {
        return;
    }
    let copy = tokio::io::copy_bidirectional(&mut client, &mut stream);
    tokio::pin!(copy);
    let mut tick = tokio::time::interval(TELL_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut copy => break,
            _ = tick.tick() => account.tell(),
        }
    }
}
