#![allow(dead_code)]
//! A minimal SMTP server on 127.0.0.1 standing in for a mail relay: greeting, EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA … `.`, RSET, NOOP, QUIT (no AUTH, no STARTTLS). It records each
//! message (envelope sender, recipients, raw data with dot-stuffing undone) and can be stopped
//! (the port refuses connections) and started again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use proxyvisor_testkit::loopback::{bind_loopback, bind_reuse, spawn_accept_loop};

/// Longest message accepted.
const MAX_DATA: usize = 10 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as received (CRLF line ends), without the final `.` line.
    pub data: String,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    shutdown: Mutex<Option<Arc<watch::Sender<bool>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let server = SmtpServer {
            addr,
            mails: Arc::new(Mutex::new(Vec::new())),
            shutdown: Mutex::new(None),
        };
        server.serve(listener);
        server
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let shutdown = Arc::new(watch::channel(false).0);
        let mails = self.mails.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            session(stream, mails.clone())
        });
        *lock(&self.shutdown) = Some(shutdown);
    }

    /// `smtp://127.0.0.1:PORT` (plain, as `alerts.email.smtp_url`).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn mails(&self) -> Vec<Mail> {
        lock(&self.mails).clone()
    }

    /// Stops listening and returns once the port refuses connections (sessions in progress
    /// finish).
    pub async fn stop(&self) {
        if let Some(s) = lock(&self.shutdown).take() {
            s.send_replace(true);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the SMTP stand-in still accepts connections"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Listens again on the same port.
    pub async fn start_again(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind_reuse(self.addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "cannot bind {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }
}

/// The address inside `<...>` of `MAIL FROM:<a> ...` / `RCPT TO:<b>`.
fn address(arg: &str) -> String {
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_string(),
        _ => arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let _ = tokio::time::timeout(Duration::from_secs(30), talk(stream, mails)).await;
}

async fn talk(stream: TcpStream, mails: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    wr.write_all(b"220 smtp-stand-in ESMTP ready\r\n").await?;
    let (mut from, mut to): (Option<String>, Vec<String>) = (None, Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-smtp-stand-in\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
        } else if upper.starts_with("HELO") {
            b"250 smtp-stand-in\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = Some(address(&cmd[10..]));
            to.clear();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                b"503 5.5.1 MAIL first\r\n"
            } else {
                to.push(address(&cmd[8..]));
                b"250 2.1.5 OK\r\n"
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                b"503 5.5.1 RCPT first\r\n"
            } else {
                wr.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Dot-stuffing: a leading `..` stands for `.`.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    if data.len() > MAX_DATA {
                        wr.write_all(b"552 5.3.4 Too big\r\n").await?;
                        return Ok(());
                    }
                }
                lock(&mails).push(Mail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 2.0.0 OK queued\r\n"
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            b"250 2.0.0 OK\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 OK\r\n"
        } else if upper == "QUIT" {
            wr.write_all(b"221 2.0.0 Bye\r\n").await?;
            return wr.shutdown().await;
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        wr.write_all(reply).await?;
    }
}
