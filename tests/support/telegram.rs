#![allow(dead_code)]
//! A stand-in for Telegram's Bot API on 127.0.0.1: `POST /bot<token>/sendMessage` records each
//! message (`chat_id`, `text`, `parse_mode`, `disable_notification`) and answers like Telegram.
//! Tests can make it answer the next n requests `429` with `parameters.retry_after`, or an
//! error status with a `description`, or hold the answer to the next n messages (`hold`). A
//! wrong token gets 404, as from Telegram.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use proxyvisor_testkit::loopback::{
    bind_loopback, close_gracefully, read_request, spawn_accept_loop, write_response,
};

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// One message as the bot API received it.
#[derive(Clone, Debug)]
pub struct Sent {
    /// As sent: a number or a string, shown as text.
    pub chat_id: String,
    pub text: String,
    pub parse_mode: Option<String>,
    pub disable_notification: bool,
    pub at: Instant,
}

#[derive(Clone, Debug)]
enum Reply {
    TooMany { retry_after: u64 },
    Error { status: u16, description: String },
}

#[derive(Default)]
struct State {
    messages: Vec<Sent>,
    script: VecDeque<Reply>,
    requests: usize,
    /// When each scripted refusal was answered.
    refusals: Vec<Instant>,
    /// The next messages are taken at once and answered after this long each.
    holds: VecDeque<Duration>,
}

pub struct TelegramServer {
    pub addr: SocketAddr,
    token: String,
    state: Arc<Mutex<State>>,
    shutdown: Arc<watch::Sender<bool>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl TelegramServer {
    /// Serves the bot with this token.
    pub async fn start(token: &str) -> TelegramServer {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shutdown = Arc::new(watch::channel(false).0);
        let (s, path) = (state.clone(), format!("/bot{token}/sendMessage"));
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            serve(stream, s.clone(), path.clone())
        });
        TelegramServer {
            addr,
            token: token.into(),
            state,
            shutdown,
        }
    }

    /// What `alerts.telegram.api_base` should be.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<Sent> {
        lock(&self.state).messages.clone()
    }

    /// Every request, refused ones included.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// When the scripted refusals were answered.
    pub fn refusals(&self) -> Vec<Instant> {
        lock(&self.state).refusals.clone()
    }

    /// The next `n` requests get 429 with `parameters.retry_after = secs`.
    pub fn answer_429(&self, n: usize, secs: u64) {
        let mut s = lock(&self.state);
        s.script
            .extend((0..n).map(|_| Reply::TooMany { retry_after: secs }));
    }

    /// The next `n` requests get `status` with this `description`.
    pub fn answer_error(&self, n: usize, status: u16, description: &str) {
        let mut s = lock(&self.state);
        s.script.extend((0..n).map(|_| Reply::Error {
            status,
            description: description.into(),
        }));
    }

    /// The next `n` messages are taken (counted) at once and answered only after `delay`, as
    /// from a slow network: the sender cannot know meanwhile that they arrived.
    pub fn hold(&self, n: usize, delay: Duration) {
        lock(&self.state).holds.extend((0..n).map(|_| delay));
    }

    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, path: String) {
    let read = async {
        let (head, mut body) = read_request(&mut stream).await?;
        let len: usize = head.header("content-length")?.parse().ok()?;
        if len > MAX_BODY {
            return None;
        }
        let mut rest = vec![0u8; len.saturating_sub(body.len())];
        stream.read_exact(&mut rest).await.ok()?;
        body.extend_from_slice(&rest);
        body.truncate(len);
        Some((head, body))
    };
    let Ok(Some((head, body))) = tokio::time::timeout(Duration::from_secs(5), read).await else {
        return;
    };
    let mut held = None;
    let (status, answer) = {
        let mut s = lock(&state);
        s.requests += 1;
        if head.method != "POST" || head.target != path {
            (
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            )
        } else if let Some(reply) = s.script.pop_front() {
            s.refusals.push(Instant::now());
            match reply {
                Reply::TooMany { retry_after } => (
                    429,
                    json!({"ok": false, "error_code": 429,
                           "description": format!("Too Many Requests: retry after {retry_after}"),
                           "parameters": {"retry_after": retry_after}}),
                ),
                Reply::Error {
                    status,
                    description,
                } => (
                    status,
                    json!({"ok": false, "error_code": status, "description": description}),
                ),
            }
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v["text"].is_string() => {
                    let chat_id = match &v["chat_id"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    s.messages.push(Sent {
                        chat_id,
                        text: v["text"].as_str().unwrap_or_default().to_string(),
                        parse_mode: v["parse_mode"].as_str().map(str::to_string),
                        disable_notification: v["disable_notification"].as_bool().unwrap_or(false),
                        at: Instant::now(),
                    });
                    let id = s.messages.len();
                    held = s.holds.pop_front();
                    (200, json!({"ok": true, "result": {"message_id": id}}))
                }
                _ => (
                    400,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}),
                ),
            }
        }
    };
    if let Some(delay) = held {
        tokio::time::sleep(delay).await;
    }
    let headers = [("Content-Type", "application/json".to_string())];
    if write_response(&mut stream, status, &headers, answer.to_string().as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
}
