//! Hostile input on every route: oversized bodies, wrong content types, invalid UTF-8, huge
//! query strings, out-of-range numbers, unknown fields, wrong JSON types, deep nesting, empty
//! bodies, unknown paths and methods. Every answer is the route's normal one where the input is
//! actually fine, a 4xx with the error JSON otherwise; never a 5xx; and the app serves on, with
//! no actor restarted.
//!
//! The one place the error JSON is not required: requests actix refuses before any route sees
//! them, while parsing the request head (a 100 KB URL, bytes that are not a URL in the request
//! line, an unknown HTTP version: actix-http 3.20 answers 400 with an empty body). Those must
//! still be 4xx.

use crate::support::app::{TestApp, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a route takes its body.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Takes {
    /// Nothing: the body is ignored.
    Nothing,
    /// A JSON body is required (`web::Json`: content type checked, 64 KiB).
    Json,
    /// An optional JSON body (empty means none), whatever the content type.
    OptionalJson,
}

/// Which query parameter a route reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Query {
    /// None: unknown parameters are ignored.
    Ignored,
    Count,
    Limit,
    /// `?name=` and nothing else (unknown parameters are 400).
    Name,
}

struct Route {
    method: Method,
    path: String,
    takes: Takes,
    query: Query,
}

fn route(method: Method, path: &str, takes: Takes, query: Query) -> Route {
    Route {
        method,
        path: path.into(),
        takes,
        query,
    }
}

/// Every route of `src/api/*.rs`, with a made-up name or id where the path has one; `lease` is
/// a live lease's id.
fn routes(lease: &str) -> Vec<Route> {
    use Query::*;
    use Takes::*;
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    vec![
        // serving
        route(get.clone(), "/api/proxy/alive", Nothing, Count),
        route(get.clone(), "/api/proxies", Nothing, Count),
        route(get.clone(), "/list", Nothing, Limit),
        route(get.clone(), "/random", Nothing, Ignored),
        route(post.clone(), "/api/proxy/report", Json, Ignored),
        // status
        route(get.clone(), "/health", Nothing, Ignored),
        route(get.clone(), "/api/health", Nothing, Ignored),
        route(get.clone(), "/stats", Nothing, Ignored),
        route(get.clone(), "/api/ultra/stats", Nothing, Ignored),
        route(get.clone(), "/api/resurrection/stats", Nothing, Ignored),
        route(get.clone(), "/api/health/comprehensive", Nothing, Ignored),
        // leases
        route(post.clone(), "/api/leases", Json, Ignored),
        route(
            post.clone(),
            &format!("/api/leases/{lease}/renew"),
            OptionalJson,
            Ignored,
        ),
        route(delete.clone(), "/api/leases/nope", Nothing, Ignored),
        route(get.clone(), "/api/allocation", Nothing, Ignored),
        // managed proxies
        route(get.clone(), "/api/v1/proxy/status", Nothing, Ignored),
        route(post.clone(), "/api/v1/proxy/health-check", Nothing, Ignored),
        route(post.clone(), "/api/admin/proxies", Json, Ignored),
        route(patch.clone(), "/api/admin/proxies", Json, Name),
        route(patch.clone(), "/api/admin/proxies/nope", Json, Name),
        route(delete.clone(), "/api/admin/proxies", OptionalJson, Name),
        route(
            delete.clone(),
            "/api/admin/proxies/nope",
            OptionalJson,
            Name,
        ),
        // monitors
        route(get.clone(), "/api/monitors", Nothing, Ignored),
        route(post.clone(), "/api/admin/monitors", Json, Ignored),
        route(delete.clone(), "/api/admin/monitors", OptionalJson, Name),
        route(
            delete.clone(),
            "/api/admin/monitors/nope",
            OptionalJson,
            Name,
        ),
        route(
            post.clone(),
            "/api/admin/monitors/nope/restart",
            Nothing,
            Ignored,
        ),
        // admin
        route(
            post.clone(),
            "/api/admin/sources/farm/fetch",
            Nothing,
            Ignored,
        ),
        route(
            post.clone(),
            "/api/admin/actors/alerter/crash",
            Nothing,
            Ignored,
        ),
        // alerts
        route(get.clone(), "/api/alerts", Nothing, Limit),
        route(post, "/api/admin/alerts/test", OptionalJson, Ignored),
    ]
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    json: bool,
    body: Vec<u8>,
}

impl Answer {
    fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }
}

/// Sends a request with the admin token (so admin routes get past their check).
async fn hit(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let mut r = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    let r = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {}: no answer: {}", clip(path), e.without_url()));
    let json = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let status = r.status().as_u16();
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, json, body }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// What went wrong, collected so that one run lists every failing case (only this test
/// writes here).
static FAILURES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn fail(message: String) {
    FAILURES.lock().unwrap().push(message);
}

/// Never a 5xx; a 4xx is the error JSON with a short message.
fn well_formed(what: &str, a: &Answer) -> bool {
    if a.status >= 500 {
        fail(format!("{what} → {} {}", a.status, a.text()));
        return false;
    }
    if a.status >= 400 {
        let v = a.value();
        let code = v["error"]["code"].as_str();
        let message = v["error"]["message"].as_str();
        if !a.json || code.is_none_or(str::is_empty) || message.is_none_or(str::is_empty) {
            fail(format!(
                "{what} → {} without the error JSON: {}",
                a.status,
                a.text()
            ));
            return false;
        }
        if message.unwrap().len() >= 400 {
            fail(format!(
                "{what}: the message echoes too much input: {}",
                a.text()
            ));
            return false;
        }
    }
    true
}

/// The answer must be `status` (well formed, and with `code` when given).
fn expect(what: &str, a: &Answer, status: u16, code: Option<&str>) {
    if !well_formed(what, a) {
        return;
    }
    if a.status != status {
        fail(format!("{what} → {}, not {status}: {}", a.status, a.text()));
    } else if let Some(code) = code {
        if a.value()["error"]["code"] != code {
            fail(format!("{what} → code not {code}: {}", a.text()));
        }
    }
}

fn expect_4xx(what: &str, a: &Answer) {
    if well_formed(what, a) && !(400..500).contains(&a.status) {
        fail(format!("{what} → {}, not a 4xx: {}", a.status, a.text()));
    }
}

/// The answer of a route to a request with no body and no query: what it answers whenever
/// the hostile part is something it does not read.
async fn baseline(app: &TestApp, r: &Route) -> u16 {
    let a = hit(app, r.method.clone(), &r.path, None, None).await;
    let what = format!("{} {} (plain)", r.method, r.path);
    well_formed(&what, &a);
    a.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_every_route_is_a_4xx_with_the_error_json_never_a_5xx() {
    let run = crate::start_serving(&[10], |c| c).await;
    let app = &run.app;
    let (status, lease) = app
        .post_json("/api/leases", &json!({"count": 1, "ttl_secs": 600}))
        .await;
    assert_eq!(status, 201, "{lease}");
    let lease = lease["lease_id"].as_str().unwrap().to_string();
    let routes = routes(&lease);

    let json_ct = Some("application/json");
    let big = |n: usize| {
        let mut b = br#"{"name":""#.to_vec();
        b.resize(n, b'x');
        b.extend_from_slice(br#""}"#);
        b
    };
    let deep = |n: usize| {
        let mut b = br#"{"name":"#.to_vec();
        b.extend(std::iter::repeat_n(b'[', n));
        b.extend(std::iter::repeat_n(b']', n));
        b.push(b'}');
        b
    };

    for r in &routes {
        let m = r.method.clone();
        let p = r.path.as_str();
        let normal = baseline(app, r).await;
        let what = |case: &str| format!("{m} {p}: {case}");

        // Bodies: over the 64 KiB limit, and a few MB.
        for (case, body) in [
            ("a body just over 64 KiB", big(64 * 1024 + 1)),
            ("a 4 MB body", big(4 << 20)),
        ] {
            let a = hit(app, m.clone(), p, json_ct, Some(body)).await;
            match r.takes {
                Takes::Nothing => expect(&what(case), &a, normal, None),
                _ => expect(&what(case), &a, 413, Some("payload_too_large")),
            }
        }

        // Compressed bodies are refused before anything inflates them (a gzip bomb of 1 MB of
        // JSON in 1 KB, broken gzip, an encoding actix does not decode): 415 everywhere.
        let bomb = gzip(&big(1 << 20));
        assert!(bomb.len() < 4 * 1024);
        for (case, encoding, body) in [
            ("a gzip bomb", "gzip", bomb),
            ("broken gzip", "gzip", b"\x1f\x8b\x08\x00garbage".to_vec()),
            ("a br body", "br", b"\x8b\x00\x80garbage".to_vec()),
        ] {
            let a = hit_encoded(app, m.clone(), p, encoding, body).await;
            expect(&what(case), &a, 415, Some("unsupported_media_type"));
        }

        // Wrong content types (or none) on a body that is JSON.
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
            None,
        ] {
            let case = format!("`{{}}` as {ct:?}");
            let a = hit(app, m.clone(), p, ct, Some(b"{}".to_vec())).await;
            let as_json = hit(app, m.clone(), p, json_ct, Some(b"{}".to_vec())).await;
            match r.takes {
                Takes::Nothing => expect(&what(&case), &a, normal, None),
                Takes::Json => expect(&what(&case), &a, 400, Some("bad_request")),
                // The content type is not what these judge: the same answer as with JSON's.
                Takes::OptionalJson => expect(&what(&case), &a, as_json.status, None),
            }
        }
        let a = hit(
            app,
            m.clone(),
            p,
            Some("application/x-www-form-urlencoded"),
            Some(b"name=x&count=1".to_vec()),
        )
        .await;
        match r.takes {
            Takes::Nothing => expect(&what("a form"), &a, normal, None),
            _ => expect(&what("a form"), &a, 400, Some("bad_request")),
        }

        // Bodies that are not JSON of the route's shape.
        let bad_bodies: Vec<(&str, Vec<u8>)> = vec![
            ("invalid UTF-8", b"{\"name\":\"\xff\xfe\xfd\"}".to_vec()),
            ("invalid UTF-8 outside strings", b"\xff\xfe{}".to_vec()),
            ("not JSON", b"count=1".to_vec()),
            ("truncated JSON", b"{\"name\":".to_vec()),
            ("NaN", b"{\"count\":NaN,\"ttl_secs\":NaN}".to_vec()),
            ("an unknown field", br#"{"bogus_field":1}"#.to_vec()),
            ("an array", b"[]".to_vec()),
            ("a string", br#""name""#.to_vec()),
            ("null", b"null".to_vec()),
            ("a number", b"5".to_vec()),
            ("a number over f64", b"1e309".to_vec()),
            ("deeply nested arrays", deep(30_000)),
            ("deeply nested objects", {
                let mut b = Vec::new();
                for _ in 0..5_000 {
                    b.extend_from_slice(br#"{"a":"#);
                }
                b.extend_from_slice(b"1");
                b.extend(std::iter::repeat_n(b'}', 5_000));
                b
            }),
            ("a NUL", b"\0".to_vec()),
        ];
        for (case, body) in bad_bodies {
            let a = hit(app, m.clone(), p, json_ct, Some(body)).await;
            match (r.takes, case) {
                (Takes::Nothing, _) => expect(&what(case), &a, normal, None),
                // JSON's `null` is no body, as an empty one is.
                (Takes::OptionalJson, "null") => expect(&what(case), &a, normal, None),
                _ => expect(&what(case), &a, 400, Some("bad_request")),
            }
        }

        // An empty body where one is required.
        let a = hit(app, m.clone(), p, json_ct, Some(Vec::new())).await;
        match r.takes {
            Takes::Json => expect(&what("an empty body"), &a, 400, Some("bad_request")),
            _ => expect(&what("an empty body"), &a, normal, None),
        }

        // Queries: invalid UTF-8, numbers out of range, huge.
        let param = match r.query {
            Query::Count => "count",
            Query::Limit => "limit",
            Query::Name => "name",
            Query::Ignored => "cache_buster",
        };
        let values = [
            "%FF%FE",
            "%C0%AF",
            "-1",
            "99999999999999999999",
            "18446744073709551616",
            "1e3",
            "1.5",
            "NaN",
            "inf",
            "0x10",
            "%00",
            "",
        ];
        for v in values {
            let case = format!("?{param}={v}");
            let a = hit(app, m.clone(), &format!("{p}?{param}={v}"), None, None).await;
            match (r.query, v) {
                (Query::Ignored, _) => expect(&what(&case), &a, normal, None),
                (Query::Count | Query::Limit, _) => {
                    expect(&what(&case), &a, 400, Some("bad_request"))
                }
                // A name nobody has (or one the path contradicts): never served as found.
                (Query::Name, _) => expect_4xx(&what(&case), &a),
            }
        }
        let a = hit(app, m.clone(), &format!("{p}?unknown_param=1"), None, None).await;
        match r.query {
            Query::Name => expect(&what("an unknown parameter"), &a, 400, Some("bad_request")),
            _ => expect(&what("an unknown parameter"), &a, normal, None),
        }
        // 16 KB reaches the routes; 100 KB is refused by actix before any route.
        let long = format!("{p}?{param}={}", "9".repeat(16 * 1024));
        let a = hit(app, m.clone(), &long, None, None).await;
        match r.query {
            Query::Ignored => expect(&what("a 16 KB query"), &a, normal, None),
            _ => expect_4xx(&what("a 16 KB query"), &a),
        }
        // (Sent raw: reqwest refuses URLs over 64 KB itself.)
        let huge = format!("{m} {p}?{param}={} HTTP/1.1\r\n", "9".repeat(100 * 1024));
        let status = raw_status(app.port, huge.as_bytes()).await;
        if !(400..500).contains(&status) {
            fail(format!("{}a 100 KB URL → {status}", what("")));
        }

        // Unknown methods on the route's path: 405 with the error JSON.
        for other in [
            Method::PUT,
            Method::OPTIONS,
            Method::from_bytes(b"BREW").unwrap(),
        ] {
            let a = hit(app, other.clone(), p, None, None).await;
            expect(&format!("{other} {p}"), &a, 405, Some("method_not_allowed"));
        }
    }

    // Numbers and types in body fields, route by route.
    let field_cases: Vec<(Method, String, Value)> = {
        let post = Method::POST;
        let patch = Method::PATCH;
        let renew = format!("/api/leases/{lease}/renew");
        let proxy = |extra: Value| {
            let mut v = json!({"name": "hostile", "url": "http://127.0.0.1:9"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let monitor = |extra: Value| {
            let mut v = json!({"name": "hostile", "url": "http://127.0.0.1:9/"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let big_int = serde_json::from_str::<Value>("99999999999999999999").unwrap();
        let mut cases = vec![];
        for bad in [
            json!({"count": -1}),
            json!({"count": 0}),
            json!({"count": big_int}),
            json!({"count": u64::MAX}),
            json!({"count": 1.5}),
            json!({"count": "5"}),
            json!({"count": 10001}),
            json!({"count": 1, "ttl_secs": -3}),
            json!({"count": 1, "ttl_secs": 0}),
            json!({"count": 1, "ttl_secs": 86_401}),
            json!({"count": 1, "ttl_secs": "60"}),
            json!({"count": 1, "strategy": 5}),
            json!({"count": 1, "strategy": "slowest"}),
            json!({"count": 1, "session": ""}),
            json!({"count": 1, "session": "s".repeat(300)}),
        ] {
            cases.push((post.clone(), "/api/leases".to_string(), bad));
        }
        for bad in [
            json!({"ttl_secs": -3}),
            json!({"ttl_secs": 0}),
            json!({"ttl_secs": 1e300}),
            json!({"ttl_secs": "60"}),
            json!({"ttl_secs": 60, "extra": true}),
        ] {
            cases.push((post.clone(), renew.clone(), bad));
        }
        for bad in [
            json!({"proxy": 5, "ok": true}),
            json!({"proxy": "http://127.0.0.1:99999", "ok": false}),
            json!({"proxy": "http://127.0.0.1:-1", "ok": false}),
            json!({"proxy": "http://127.0.0.1:1", "ok": 1}),
            json!({"proxy": "http://127.0.0.1:1", "ok": "false"}),
            json!({"proxy": format!("{}://1.2.3.4:80", "x".repeat(400)), "ok": false}),
        ] {
            cases.push((post.clone(), "/api/proxy/report".to_string(), bad));
        }
        for extra in [
            json!({"max_leases": -3}),
            json!({"max_leases": 0}),
            json!({"max_leases": 4_294_967_296u64}),
            json!({"priority": 2_147_483_648u64}),
            json!({"priority": -2_147_483_649i64}),
            json!({"priority": 1.5}),
            json!({"cost_per_gb": -1}),
            json!({"cost_per_gb": "cheap"}),
            json!({"kind": 7}),
            json!({"kind": "stolen"}),
            json!({"url": "http://127.0.0.1:70000"}),
            json!({"url": "gopher://127.0.0.1:70"}),
            json!({"name": ""}),
            json!({"name": 5}),
        ] {
            cases.push((post.clone(), "/api/admin/proxies".to_string(), proxy(extra)));
        }
        for bad in [
            json!({"max_leases": -3}),
            json!({"priority": big_int}),
            json!({"cost_per_gb": -0.5}),
        ] {
            cases.push((
                patch.clone(),
                "/api/admin/proxies/hostile-ok".to_string(),
                bad,
            ));
        }
        for extra in [
            json!({"interval_secs": -1}),
            json!({"interval_secs": 0}),
            json!({"interval_secs": 86_401}),
            json!({"interval_secs": "10"}),
            json!({"timeout_ms": -5}),
            json!({"timeout_ms": 0}),
            json!({"timeout_ms": u64::MAX}),
            json!({"expect_status": 70_000}),
            json!({"expect_status": 99}),
            json!({"failures_before_down": 4_294_967_296u64}),
            json!({"failures_before_down": 0}),
            json!({"recovery": {"action": "none", "cooldown_secs": -1}}),
            json!({"recovery": {"action": "none", "cooldown_secs": 1e300}}),
            json!({"recovery": {"action": "none", "max_attempts": -1}}),
            json!({"recovery": {"action": "teleport"}}),
            json!({"recovery": {"action": "none", "bogus": 1}}),
            json!({"recovery": "none"}),
            json!({"url": "file:///etc/passwd"}),
            json!({"name": "a/b"}),
        ] {
            cases.push((
                post.clone(),
                "/api/admin/monitors".to_string(),
                monitor(extra),
            ));
        }
        for bad in [
            json!({"severity": "apocalyptic"}),
            json!({"severity": 3}),
            json!({"message": 5}),
            json!({"message": ""}),
            json!({"message": "m".repeat(1001)}),
        ] {
            cases.push((post.clone(), "/api/admin/alerts/test".to_string(), bad));
        }
        cases
    };
    // A managed proxy that exists, for PATCH to get past the name.
    let (status, created) = app
        .send(
            Method::POST,
            "/api/admin/proxies",
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "hostile-ok", "url": "http://127.0.0.1:10"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    for (m, p, body) in field_cases {
        let text = body.to_string();
        let a = hit(
            app,
            m.clone(),
            &p,
            Some("application/json"),
            Some(text.clone().into_bytes()),
        )
        .await;
        expect(
            &format!("{m} {p} {}", clip(&text)),
            &a,
            400,
            Some("bad_request"),
        );
    }

    // Path segments of 4 KB: refused or not found, never repeated whole in the answer.
    let long = "n".repeat(4096);
    for (m, p, body) in [
        (Method::DELETE, format!("/api/leases/{long}"), None),
        (Method::POST, format!("/api/leases/{long}/renew"), None),
        (
            Method::PATCH,
            format!("/api/admin/proxies/{long}"),
            Some(json!({"priority": 1})),
        ),
        (Method::DELETE, format!("/api/admin/proxies/{long}"), None),
        (Method::DELETE, format!("/api/admin/monitors/{long}"), None),
        (
            Method::POST,
            format!("/api/admin/monitors/{long}/restart"),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/sources/{long}/fetch"),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/actors/{long}/crash"),
            None,
        ),
        (
            Method::DELETE,
            "/api/admin/proxies".into(),
            Some(json!({"name": long})),
        ),
        (
            Method::DELETE,
            "/api/admin/monitors".into(),
            Some(json!({"name": long})),
        ),
    ] {
        let body = body.map(|b| b.to_string().into_bytes());
        let a = hit(app, m.clone(), &p, Some("application/json"), body).await;
        expect_4xx(&format!("{m} {} (4 KB name)", clip(&p)), &a);
    }

    // Bad path segments: invalid UTF-8, and names nobody has.
    for (m, p) in [
        (Method::DELETE, "/api/leases/%FF%FE"),
        (Method::POST, "/api/leases/%FF%FE/renew"),
        (Method::POST, "/api/admin/sources/%FF%FE/fetch"),
        (Method::POST, "/api/admin/monitors/%C0%AF/restart"),
        (Method::DELETE, "/api/admin/proxies/%FF"),
        (Method::POST, "/api/admin/sources/%2e%2e%2f%2e%2e/fetch"),
        (Method::POST, "/api/admin/actors/%00/crash"),
    ] {
        let a = hit(app, m.clone(), p, None, None).await;
        expect_4xx(&format!("{m} {p}"), &a);
    }

    // Unknown paths: 404 with the error JSON.
    for p in [
        "/nope",
        "/api/nope",
        "/api/proxy/alive/extra",
        "/api/leases/a/b/c",
        "/%FF%FE",
        "/api/admin/../../etc/passwd",
        "//",
    ] {
        let a = hit(app, Method::GET, p, None, None).await;
        expect(&format!("GET {p}"), &a, 404, Some("not_found"));
    }

    // Hostile headers: a bad bearer token is 401; an 8 KB one reaches the app.
    let a = hit_with_auth(app, "/api/admin/alerts/test", b"Bearer \xff\xfe").await;
    expect("invalid UTF-8 in the token", &a, 401, Some("unauthorized"));
    let a = hit_with_auth(
        app,
        "/api/admin/alerts/test",
        format!("Bearer {}", "x".repeat(8192)).as_bytes(),
    )
    .await;
    expect("an 8 KB token", &a, 401, Some("unauthorized"));

    // Bytes that are not a URL, sent raw: actix refuses them before any route (400/4xx).
    for line in [
        &b"GET /api/proxy/alive?count=\xff\xfe HTTP/1.1\r\n"[..],
        b"GET /\xff\xfe HTTP/1.1\r\n",
        b"GET /health HTTP/9.9\r\n",
        b"\xff\xfe\xfd /health HTTP/1.1\r\n",
    ] {
        let status = raw_status(app.port, line).await;
        if !(400..500).contains(&status) {
            fail(format!("{} → {status}", String::from_utf8_lossy(line)));
        }
    }

    let failures = std::mem::take(&mut *FAILURES.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{} hostile requests were answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The app serves on: liveness, the pool, and every actor running, none restarted.
    let (status, _) = app.get_json("/health").await;
    assert_eq!(status, 200);
    let (status, body) = app.get_json("/api/proxy/alive?count=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    let actors = health["actors"].as_array().expect("actors listed");
    assert!(!actors.is_empty());
    for a in actors {
        assert_eq!(a["status"], "running", "{a}");
        assert_eq!(a["restarts"], 0, "{a}");
    }
    run.app.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A JSON body with a `Content-Encoding`.
async fn hit_encoded(
    app: &TestApp,
    method: Method,
    path: &str,
    encoding: &str,
    body: Vec<u8>,
) -> Answer {
    let r = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} ({encoding}): {}", e.without_url()));
    let status = r.status().as_u16();
    let json = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, json, body }
}

async fn hit_with_auth(app: &TestApp, path: &str, auth: &[u8]) -> Answer {
    let r = app
        .client
        .post(app.url(path))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(auth).unwrap(),
        )
        .send()
        .await
        .expect("answered");
    let status = r.status().as_u16();
    let json = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, json, body }
}

/// Sends a raw request line (plus a Host and the end of the head) and reads the status.
async fn raw_status(port: u16, line: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = line.to_vec();
    req.extend_from_slice(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no status for {:?}: {head:?}",
                clip(&String::from_utf8_lossy(line))
            )
        })
}
