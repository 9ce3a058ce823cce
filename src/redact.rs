//! Hiding what may be a secret: in texts that come from outside (errors, servers' answers), in
//! parse errors (config, 400 answers), and in URLs shown in status and logs. The one home of
//! these helpers.

/// A parse error's text without the values it quotes: serde writes a mistyped value into its
/// message (`invalid type: string "X-Token: abc", expected a map`), and a mistyped field may hold
/// a secret. Every double-quoted part becomes `"…"`; field names (in backticks) and positions
/// stay.
pub fn quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"…\"");
        let mut escaped = false;
        for c in chars.by_ref() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => break,
                _ => {}
            }
        }
    }
    out
}

/// toml's error on one line without its source excerpt (the line may hold a secret, e.g. an
/// unquoted bot token): the position, the key written on that line, and the message with its
/// quoted values hidden.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = quoted_values(&e.message().split_whitespace().collect::<Vec<_>>().join(" "));
    let Some(span) = e.span() else {
        return format!("TOML parse error: {message}");
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let key = match line.split_once('=') {
        Some((key, _)) => key.trim(),
        None if line.starts_with('[') => line,
        None => "",
    };
    let key = if key.is_empty() || key.contains('"') || key.contains('\'') {
        String::new()
    } else {
        format!(" (`{key}`)")
    };
    format!("TOML parse error at line {line_no}, column {column}{key}: {message}")
}

/// Removes secrets from a text that came from outside (an error, a server's answer), keeps it
/// on one line and short.
pub fn text(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        s = s.replace(secret, "***");
    }
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    cut_chars(&s, 300)
}

fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// The URL as shown in status and logs: no credentials, no query (either may hold a token).
pub fn url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

/// What must never show from a URL with credentials (an SMTP URL): its password, raw and
/// percent-decoded (as lettre decodes it), and the URL itself.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Ok(u) = url::Url::parse(url.trim()) {
        if let Some(p) = u.password() {
            out.push(p.to_string());
            if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
                out.push(decoded.into_owned());
            }
        }
    }
    out
}

/// An error and its sources on one line (`a: b: c`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// Compares a given secret with the expected one without leaking, through timing, how much of
/// it was right.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_hidden() {
        let e = serde_json::from_str::<std::collections::HashMap<String, u32>>(
            r#"{"a": "X-Token: s3cret \" still \\ secret"}"#,
        )
        .unwrap_err();
        let text = quoted_values(&e.to_string());
        assert!(
            !text.contains("secret") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(
            text.starts_with("invalid type: string \"…\", expected u32 at line 1"),
            "{text}"
        );
        assert_eq!(
            quoted_values("unknown field `api_kee`"),
            "unknown field `api_kee`"
        );
        assert_eq!(quoted_values("a \"b"), "a \"…\"");
    }

    fn toml_err(text: &str) -> String {
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        toml_error(text, &e)
    }

    #[test]
    fn toml_errors_name_the_line_and_key_but_not_the_value() {
        let text = "[alerts.telegram]\nbot_token = 123456:S3CRET\n";
        let e = toml_err(text);
        assert!(!e.contains("S3CRET") && !e.contains("123456"), "{e}");
        assert!(e.contains("line 2") && e.contains("`bot_token`"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let text = "n = \"S3CRET\"";
        let e = toml_error(text, &toml::from_str::<T>(text).unwrap_err());
        assert!(!e.contains("S3CRET") && e.contains("`n`"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_and_outside_text_kept_short() {
        let s = text(
            "POST /bot123:SECRET/sendMessage failed\r\nagain 123:SECRET",
            &["123:SECRET", ""],
        );
        assert_eq!(s, "POST /bot***/sendMessage failed again ***");
        let long = text(&"é".repeat(1000), &[]);
        assert_eq!(long.chars().count(), 301);
    }

    #[test]
    fn a_urls_password_is_a_secret_raw_and_decoded() {
        let s = url_secrets("smtps://me:p%40ss%20w@mail.example:465");
        assert!(s.contains(&"p%40ss%20w".to_string()), "{s:?}");
        assert!(s.contains(&"p@ss w".to_string()), "{s:?}");
        assert_eq!(
            url("https://u:pw@h.example/x?token=1"),
            "https://h.example/x"
        );
    }
}
