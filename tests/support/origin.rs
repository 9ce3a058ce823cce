#![allow(dead_code)]
//! An origin that counts every byte it reads and writes on its TCP connections (below TLS when
//! it speaks TLS), for checking the gateway's accounting exactly. `GET /bytes/N` answers N
//! bytes; `POST /upload` reads its `Content-Length` body and answers `got N`; anything else
//! answers `ok`. One request per connection (`Connection: close`).

use proxyvisor_testkit::loopback::{bind_loopback, read_request, spawn_accept_loop};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Default)]
struct Counts {
    read: AtomicU64,
    written: AtomicU64,
    requests: AtomicUsize,
}

pub struct CountingOrigin {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
    shutdown: Arc<watch::Sender<bool>>,
    /// PEM of the certificate (for `localhost` and 127.0.0.1) when it speaks TLS.
    pub cert_pem: Option<String>,
}

impl CountingOrigin {
    pub async fn start() -> CountingOrigin {
        Self::start_with(None).await
    }

    /// The same, over TLS with a fresh self-signed certificate.
    pub async fn start_tls() -> CountingOrigin {
        let key = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("a test certificate");
        let cert_pem = key.cert.pem();
        let der = key.cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der())
            .expect("the key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![der], key_der)
            .expect("a server config");
        let mut origin =
            Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
        origin.cert_pem = Some(cert_pem);
        origin
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> CountingOrigin {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let counts = Arc::new(Counts::default());
        let shutdown = Arc::new(watch::channel(false).0);
        let c = counts.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            let counted = Counted {
                inner: stream,
                counts: c.clone(),
            };
            let tls = tls.clone();
            async move {
                let counts = counted.counts.clone();
                match tls {
                    None => serve(counted, counts).await,
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(counted).await {
                            serve(s, counts).await;
                        }
                    }
                }
            }
        });
        CountingOrigin {
            addr,
            counts,
            shutdown,
            cert_pem: None,
        }
    }

    /// `http://127.0.0.1:PORT{path}` (`https://localhost:PORT{path}` over TLS).
    pub fn url(&self, path: &str) -> String {
        match self.cert_pem {
            None => format!("http://{}{}", self.addr, path),
            Some(_) => format!("https://localhost:{}{}", self.addr.port(), path),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Bytes read from and written to its TCP connections so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counts.read.load(Ordering::SeqCst),
            self.counts.written.load(Ordering::SeqCst),
        )
    }

    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }

    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, counts: Arc<Counts>) {
    let Some((req, leftover)) = read_request(&mut s).await else {
        return;
    };
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let path = proxyvisor_testkit::loopback::origin_form(&req.target).to_string();
    let body_len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The request body, read whole before answering (so its bytes are counted first).
    let mut got = leftover.len().min(body_len);
    let mut chunk = vec![0u8; 64 * 1024];
    while got < body_len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
    }
    let answer: Vec<u8> = if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\
             Connection: close\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let block = vec![b'x'; 64 * 1024];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len());
            if s.write_all(&block[..k]).await.is_err() {
                return;
            }
            left -= k;
        }
        Vec::new()
    } else {
        let body = if req.method == "POST" {
            format!("got {got}")
        } else {
            "ok".to_string()
        };
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    if !answer.is_empty() && s.write_all(&answer).await.is_err() {
        return;
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
    // Reads what the client still sends (a TLS close_notify) until it closes, so that too
    // is counted before the connection ends.
    let mut rest = [0u8; 1024];
    let drain = async {
        while let Ok(n) = s.read(&mut rest).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
}

struct Counted {
    inner: TcpStream,
    counts: Arc<Counts>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.counts.read.fetch_add(n as u64, Ordering::SeqCst);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.counts.written.fetch_add(n as u64, Ordering::SeqCst);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
