//! One HTTP/1.1 request and its answer on a connection of its own, with as little state as a
//! check needs: the request head is written at once, the answer read into one buffer that
//! grows with it (its head parsed by `httparse`, its body framed by `Content-Length`, chunked
//! encoding or the end of the connection) and cut at [`MAX_BODY`]. A check that waits for a
//! silent proxy holds its socket and a buffer of [`FIRST_READ`] bytes, nothing more (hyper's
//! client connection holds four times that in buffers and channels, BENCHMARKS.md).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bodies longer than this are cut: a check needs the status and a substring, not a download.
pub const MAX_BODY: usize = 64 * 1024;
/// An answer head longer than this is not an answer.
const MAX_HEAD: usize = 64 * 1024;
/// What the first read may take (the buffer grows for longer answers).
const FIRST_READ: usize = 1024;
const MAX_HEADERS: usize = 100;

/// `GET uri` with `Host`, `User-Agent`, `Connection: close` and, when given, a
/// `Proxy-Authorization` value. Every part comes from a parsed URL or base64 text: no line
/// breaks can reach the head.
pub fn request_head(uri: &str, host: &str, user_agent: &str, proxy_auth: Option<&str>) -> Vec<u8> {
    let mut head = format!(
        "GET {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n"
    );
    if let Some(auth) = proxy_auth {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends `head` and reads the answer: its status and (capped) body. An error names what was
/// wrong ("no valid answer: ...", "connection: ...").
pub async fn exchange<S>(mut io: S, head: &[u8]) -> Result<(u16, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(head)
        .await
        .map_err(|e| format!("connection: {e}"))?;
    io.flush().await.map_err(|e| format!("connection: {e}"))?;
    let mut buf: Vec<u8> = Vec::new();
    let (status, framing, head_len) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            let (status, _, len) = parsed;
            // Interim answers (100 Continue, 103 Early Hints) come before the real one.
            if (100..200).contains(&status) && status != 101 {
                buf.drain(..len);
                continue;
            }
            break parsed;
        }
        if buf.len() >= MAX_HEAD {
            return Err("no valid answer: the answer head is too long".into());
        }
        if read_more(&mut io, &mut buf).await? == 0 {
            return Err(if buf.is_empty() {
                "no valid answer: connection closed before an answer".into()
            } else {
                "no valid answer: connection closed within the answer head".into()
            });
        }
    };
    buf.drain(..head_len);
    // A body that breaks off is no body: a check expecting text in it fails.
    let body = match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => read_length(&mut io, buf, n).await.unwrap_or_default(),
        Framing::Chunked => read_chunked(&mut io, buf).await.unwrap_or_default(),
        Framing::Close => read_to_close(&mut io, buf).await.unwrap_or_default(),
    };
    Ok((status, Bytes::from(body)))
}

/// How an answer's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

/// The status, framing and head length of a complete answer head at the start of `buf`;
/// `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, Framing, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("no valid answer: {e}")),
    };
    let status = answer.code.unwrap_or(0);
    let mut framing = Framing::Close;
    for h in answer.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let chunked = (String::from_utf8_lossy(h.value).split(','))
                .any(|c| c.trim().eq_ignore_ascii_case("chunked"));
            if chunked {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("no valid answer: bad Content-Length")?;
            framing = Framing::Length(n);
        }
    }
    if matches!(status, 204 | 304) {
        framing = Framing::None;
    }
    Ok(Some((status, framing, len)))
}

/// Reads what comes next onto `buf`; 0 at the end of the connection.
async fn read_more<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Result<usize, String> {
    let room = if buf.capacity() == 0 {
        FIRST_READ
    } else {
        buf.capacity().max(FIRST_READ)
    };
    buf.reserve(room.min(MAX_BODY));
    io.read_buf(buf)
        .await
        .map_err(|e| format!("connection: {e}"))
}

async fn read_length<S: AsyncRead + Unpin>(
    io: &mut S,
    mut buf: Vec<u8>,
    n: usize,
) -> Result<Vec<u8>, String> {
    let want = n.min(MAX_BODY);
    while buf.len() < want {
        if read_more(io, &mut buf).await? == 0 {
            return Err("the body broke off".into());
        }
    }
    buf.truncate(want);
    Ok(buf)
}

async fn read_to_close<S: AsyncRead + Unpin>(
    io: &mut S,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, String> {
    while buf.len() < MAX_BODY {
        if read_more(io, &mut buf).await? == 0 {
            break;
        }
    }
    buf.truncate(MAX_BODY);
    Ok(buf)
}

/// Decodes a chunked body from `raw` (what was read past the head) and the connection.
async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    mut raw: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        // The chunk size line.
        let (size, line) = loop {
            match httparse::parse_chunk_size(&raw[at..]) {
                Ok(httparse::Status::Complete((line, size))) => break (size, line),
                Ok(httparse::Status::Partial) => {
                    if raw.len() - at > 1024 || read_more(io, &mut raw).await? == 0 {
                        return Err("bad chunk".into());
                    }
                }
                Err(_) => return Err("bad chunk size".into()),
            }
        };
        at += line;
        if size == 0 || body.len() >= MAX_BODY {
            break;
        }
        let size = usize::try_from(size).map_err(|_| "chunk too large")?;
        // The chunk's data and its CRLF.
        while raw.len() < at + size.min(MAX_BODY) + 2 {
            if read_more(io, &mut raw).await? == 0 {
                return Err("the body broke off".into());
            }
        }
        body.extend_from_slice(&raw[at..at + size.min(MAX_BODY)]);
        if size > MAX_BODY {
            break;
        }
        at += size + 2;
        // What has been decoded is dropped from the raw buffer.
        raw.drain(..at);
        at = 0;
    }
    body.truncate(MAX_BODY);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(raw: &[u8]) -> Result<(u16, Bytes), String> {
        let (mut ours, mut theirs) = tokio::io::duplex(1 << 20);
        let raw = raw.to_vec();
        let server = tokio::spawn(async move {
            let mut seen = vec![0u8; 4096];
            let n = theirs.read(&mut seen).await.unwrap_or(0);
            theirs.write_all(&raw).await.ok();
            theirs.shutdown().await.ok();
            String::from_utf8_lossy(&seen[..n]).to_string()
        });
        let head = request_head("/ok", "example.test", "test", Some("Basic dTpw"));
        let r = exchange(&mut ours, &head).await;
        let seen = server.await.unwrap_or_default();
        assert!(
            seen.starts_with("GET /ok HTTP/1.1\r\nHost: example.test\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("Proxy-Authorization: Basic dTpw\r\n"),
            "{seen}"
        );
        assert!(seen.ends_with("\r\n\r\n"), "{seen}");
        r
    }

    #[tokio::test]
    async fn a_body_framed_by_its_length() {
        let r = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more").await;
        assert_eq!(r, Ok((200, Bytes::from_static(b"hello"))));
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        let r = answer(raw).await;
        assert_eq!(r, Ok((200, Bytes::from_static(b"hello, world"))));
    }

    #[tokio::test]
    async fn a_body_to_the_end_of_the_connection_and_interim_answers() {
        let r = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 502 Bad Gateway\r\n\r\nno").await;
        assert_eq!(r, Ok((502, Bytes::from_static(b"no"))));
        let r = answer(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(r, Ok((204, Bytes::new())));
    }

    #[tokio::test]
    async fn a_long_body_is_cut_and_a_broken_one_is_empty() {
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', MAX_BODY + 10));
        let (status, body) = answer(&raw).await.expect("an answer");
        assert_eq!((status, body.len()), (200, MAX_BODY));
        let r = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort").await;
        assert_eq!(r, Ok((200, Bytes::new())));
    }

    #[tokio::test]
    async fn what_is_not_an_answer_is_named() {
        for (raw, says) in [
            (&b""[..], "connection closed before an answer"),
            (b"HTTP/1.1 200 OK\r\nConte", "closed within the answer head"),
            (b"<html>captive portal</html>\r\n\r\n", "no valid answer"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "bad Content-Length",
            ),
        ] {
            let e = answer(raw).await.expect_err("not an answer");
            assert!(e.contains(says), "{e}");
        }
    }
}
