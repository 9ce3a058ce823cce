//! The SOCKS5 listener (RFC 1928, `CONNECT` only) with username/password auth (RFC 1929): the
//! password is the gateway token, the username holds the options as on the HTTP side. Domain
//! names are passed on for the upstream to resolve (after the gateway's own target check).
//! The whole handshake must arrive within `gateway.head_timeout_ms`.

use super::route::{self, Refusal};
use super::Ctx;
use crate::published::gateway::Outcome;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_METHOD: u8 = 0xff;

/// Reply codes.
const SUCCEEDED: u8 = 0x00;
const GENERAL_FAILURE: u8 = 0x01;
const NOT_ALLOWED: u8 = 0x02;
const HOST_UNREACHABLE: u8 = 0x04;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_NOT_SUPPORTED: u8 = 0x08;

/// Why a handshake ended early: the reply to send (if any) and the log line.
struct Stop(Option<u8>, String);

fn reply_code(r: &Refusal) -> u8 {
    match r {
        Refusal::Auth | Refusal::Bad(_) => GENERAL_FAILURE,
        Refusal::Forbidden(_) => NOT_ALLOWED,
        Refusal::Unavailable(_) | Refusal::Failed(_) => HOST_UNREACHABLE,
    }
}

fn outcome(r: &Refusal) -> Outcome {
    match r {
        Refusal::Failed(_) => Outcome::Failed,
        Refusal::Unavailable(_) => Outcome::Unavailable,
        _ => Outcome::Refused,
    }
}

async fn reply(stream: &mut TcpStream, code: u8) -> std::io::Result<()> {
    stream
        .write_all(&[VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
}

pub async fn serve(ctx: Arc<Ctx>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(ctx.settings.head_timeout, handshake(&ctx, &mut stream));
    let (host, port, opts) = match handshake.await {
        Ok(Ok(t)) => t,
        Ok(Err(Stop(code, why))) => {
            ctx.shared.gateway.count(Outcome::Refused);
            log::warn!("gateway: SOCKS5 {peer}: {why}");
            if let Some(code) = code {
                let _ = reply(&mut stream, code).await;
            }
            return;
        }
        Err(_) => {
            ctx.shared.gateway.count(Outcome::Refused);
            log::warn!(
                "gateway: SOCKS5 {peer}: handshake not complete within gateway.head_timeout_ms"
            );
            return;
        }
    };
    let what = format!("SOCKS5 CONNECT {}", super::upstream::authority(&host, port));
    match super::tunnel::open(&ctx, &host, port, &opts).await {
        Ok(open) => {
            ctx.shared.gateway.count(Outcome::Ok);
            if reply(&mut stream, SUCCEEDED).await.is_ok() {
                super::tunnel::carry(stream, open).await;
            }
        }
        Err(r) => {
            ctx.shared.gateway.count(outcome(&r));
            log::warn!("gateway: {peer}: {what}: {}", r.text());
            let _ = reply(&mut stream, reply_code(&r)).await;
        }
    }
}

async fn byte(stream: &mut TcpStream) -> Result<u8, Stop> {
    stream
        .read_u8()
        .await
        .map_err(|_| Stop(None, "closed during the handshake".into()))
}

async fn bytes(stream: &mut TcpStream, n: usize) -> Result<Vec<u8>, Stop> {
    let mut buf = vec![0u8; n];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|_| Stop(None, "closed during the handshake".into()))?;
    Ok(buf)
}

/// Greeting, auth, request: the target and the options.
async fn handshake(
    ctx: &Ctx,
    stream: &mut TcpStream,
) -> Result<(String, u16, crate::domain::gateway::Options), Stop> {
    if byte(stream).await? != VERSION {
        return Err(Stop(None, "not SOCKS5".into()));
    }
    let n = byte(stream).await? as usize;
    let methods = bytes(stream, n).await?;
    let need_auth = ctx.settings.token().is_some();
    let method = if methods.contains(&USER_PASS) {
        USER_PASS
    } else if !need_auth && methods.contains(&NO_AUTH) {
        NO_AUTH
    } else {
        NO_METHOD
    };
    let write = |e: std::io::Error| Stop(None, format!("write: {e}"));
    stream.write_all(&[VERSION, method]).await.map_err(write)?;
    if method == NO_METHOD {
        return Err(Stop(
            None,
            "no acceptable auth method (username/password needed)".into(),
        ));
    }
    let (mut user, mut pass) = (None, None);
    if method == USER_PASS {
        if byte(stream).await? != 1 {
            return Err(Stop(None, "bad username/password auth version".into()));
        }
        let n = byte(stream).await? as usize;
        let u = bytes(stream, n).await?;
        let n = byte(stream).await? as usize;
        let p = bytes(stream, n).await?;
        user = Some(String::from_utf8_lossy(&u).into_owned());
        pass = Some(String::from_utf8_lossy(&p).into_owned());
    }
    let opts = route::authorize(ctx, user.as_deref(), pass.as_deref());
    if method == USER_PASS {
        let status = if matches!(opts, Err(Refusal::Auth)) {
            1
        } else {
            0
        };
        stream.write_all(&[1, status]).await.map_err(write)?;
    }
    let opts = match opts {
        Ok(o) => o,
        Err(Refusal::Auth) => return Err(Stop(None, "wrong or no password".into())),
        Err(r) => return Err(Stop(Some(reply_code(&r)), r.text())),
    };
    let head = bytes(stream, 4).await?;
    if head[0] != VERSION {
        return Err(Stop(Some(GENERAL_FAILURE), "bad request version".into()));
    }
    if head[1] != 1 {
        return Err(Stop(
            Some(COMMAND_NOT_SUPPORTED),
            format!("command {} is not supported (CONNECT only)", head[1]),
        ));
    }
    let host = match head[3] {
        1 => Ipv4Addr::from(<[u8; 4]>::try_from(bytes(stream, 4).await?).unwrap_or_default())
            .to_string(),
        4 => Ipv6Addr::from(<[u8; 16]>::try_from(bytes(stream, 16).await?).unwrap_or_default())
            .to_string(),
        3 => {
            let n = byte(stream).await? as usize;
            let name = bytes(stream, n).await?;
            let name = String::from_utf8(name)
                .ok()
                .filter(|n| {
                    !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
                })
                .ok_or_else(|| Stop(Some(GENERAL_FAILURE), "a malformed host name".into()))?;
            name
        }
        t => {
            return Err(Stop(
                Some(ADDRESS_NOT_SUPPORTED),
                format!("address type {t} is not supported"),
            ))
        }
    };
    let p = bytes(stream, 2).await?;
    let port = u16::from_be_bytes([p[0], p[1]]);
    Ok((host, port, opts))
}
