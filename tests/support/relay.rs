//! A TCP relay on loopback standing between the app and a server (PostgreSQL): `cut()` closes
//! every relayed connection and refuses new ones, as a stopped server would; `stall()` closes
//! them and holds new ones unanswered, as a network that drops packets would; `restore()`
//! relays again on the same port.

use proxyvisor_testkit::loopback::bind_reuse;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

pub struct Relay {
    pub port: u16,
    target: SocketAddr,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The accept loop, while the relay is up.
    acceptor: Option<AbortHandle>,
    conns: Vec<AbortHandle>,
    accepted: usize,
    /// New connections are held, never relayed.
    stalled: bool,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Relay {
    /// Relays 127.0.0.1:(a free port) to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = bind_reuse(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            target,
            state: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (state, target) = (self.state.clone(), self.target);
        let acceptor = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let stalled = lock(&state).stalled;
                    let conn = tokio::spawn(async move {
                        if stalled {
                            // Held open, unanswered, until the relay is restored.
                            std::future::pending::<()>().await;
                        }
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                        drop(client);
                    });
                    let mut s = lock(&state);
                    s.accepted += 1;
                    s.conns.retain(|c| !c.is_finished());
                    s.conns.push(conn.abort_handle());
                }
            }
        });
        lock(&state).acceptor = Some(acceptor.abort_handle());
    }

    /// Closes every relayed connection and the listener: connects are refused from now on.
    pub fn cut(&self) {
        let mut s = lock(&self.state);
        if let Some(a) = s.acceptor.take() {
            a.abort();
        }
        for c in s.conns.drain(..) {
            c.abort();
        }
    }

    /// Closes every relayed connection; new ones are accepted and never answered.
    pub fn stall(&self) {
        let mut s = lock(&self.state);
        s.stalled = true;
        for c in s.conns.drain(..) {
            c.abort();
        }
    }

    /// Accepts (or relays, after `stall`) again on the same port.
    pub async fn restore(&self) {
        {
            let mut s = lock(&self.state);
            if s.stalled {
                s.stalled = false;
                for c in s.conns.drain(..) {
                    c.abort();
                }
                return;
            }
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        // The aborted accept loop drops its listener at its next poll: retry briefly.
        let listener = super::wait::until(
            "the relay port to bind again",
            std::time::Duration::from_secs(5),
            || async { bind_reuse(addr).ok() },
        )
        .await;
        self.serve(listener);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.state).accepted
    }
}

impl Relay {
    /// A relay in front of the server `url` names; answers the relay and `url` through it.
    pub async fn in_front_of(url: &str) -> (Relay, String) {
        let mut u = url::Url::parse(url).expect("a URL");
        let target = format!(
            "{}:{}",
            u.host_str().expect("a host"),
            u.port().unwrap_or(5432)
        );
        let relay = Relay::start(target.parse().expect("host:port")).await;
        u.set_port(Some(relay.port)).expect("a port can be set");
        (relay, u.to_string())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
