//! Carrying out a repair: the hosting provider's API (Render, Railway), a webhook, or a local
//! command, each bounded by the monitor's `recovery.timeout_secs`. Answers are outside input:
//! they are read capped, and what is logged or reported never holds the key.

use crate::domain::monitor::{header_pairs, MonitorDef, Recovery, Secret};
use crate::domain::service_health::{RepairKind, RepairOutcome};
use serde_json::{json, Value};
use std::time::Duration;

/// Longest answer body read from a provider.
const MAX_ANSWER: usize = 64 * 1024;
/// How long a rate-limited repair waits when the provider does not say.
const DEFAULT_RETRY_MS: i64 = 60_000;

/// Runs the repair `kind` for this monitor.
pub async fn run(client: &reqwest::Client, def: &MonitorDef, kind: RepairKind) -> RepairOutcome {
    let limit = Duration::from_millis(def.repair_timeout_ms);
    match tokio::time::timeout(limit, attempt(client, &def.recovery, kind)).await {
        Ok(outcome) => outcome,
        Err(_) => failed(format!("no answer within {} ms", def.repair_timeout_ms)),
    }
}

fn failed(reason: impl Into<String>) -> RepairOutcome {
    RepairOutcome::Failed {
        reason: reason.into(),
    }
}

async fn attempt(client: &reqwest::Client, r: &Recovery, kind: RepairKind) -> RepairOutcome {
    match r {
        Recovery::None => failed("no recovery action is configured"),
        Recovery::Render {
            api_base,
            service_id,
            key,
        } => {
            let what = match kind {
                RepairKind::Restart => "restart",
                RepairKind::Redeploy => "deploys",
            };
            let url = format!("{api_base}/v1/services/{service_id}/{what}");
            let req = client.post(url).bearer_auth(&key.0).json(&json!({}));
            match send(req).await {
                Ok(_) => RepairOutcome::Done,
                Err(o) => o,
            }
        }
        Recovery::Railway {
            api_base,
            service_id,
            environment_id,
            key,
        } => railway(client, api_base, service_id, environment_id, key, kind).await,
        Recovery::Webhook {
            method,
            url,
            headers,
            body,
        } => {
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
            let mut req = client.request(method, url);
            for (k, v) in header_pairs(headers) {
                req = req.header(k, v);
            }
            if let Some(b) = body {
                req = req.body(b.clone());
            }
            match send(req).await {
                Ok(_) => RepairOutcome::Done,
                Err(o) => o,
            }
        }
        Recovery::Command { command } => run_command(command).await,
    }
}

/// Sends a request: a 2xx answer's body (capped), or the outcome to report.
async fn send(req: reqwest::RequestBuilder) -> Result<Vec<u8>, RepairOutcome> {
    let resp = req
        .send()
        .await
        .map_err(|e| failed(format!("request failed: {}", e.without_url())))?;
    let status = resp.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(RepairOutcome::RateLimited {
            retry_after_ms: retry_after_ms(resp.headers()).unwrap_or(DEFAULT_RETRY_MS),
        });
    }
    let mut resp = resp;
    let body = crate::net::read_body(&mut resp, MAX_ANSWER).await.bytes;
    if status.is_success() {
        Ok(body)
    } else {
        Err(failed(format!(
            "HTTP {}: {}",
            status.as_u16(),
            snippet(&body)
        )))
    }
}

/// `Retry-After` or Render's `Ratelimit-Reset`, in milliseconds.
fn retry_after_ms(h: &reqwest::header::HeaderMap) -> Option<i64> {
    crate::net::retry_after_secs(h, &["retry-after", "ratelimit-reset", "x-ratelimit-reset"])
        .map(|s| (s * 1000.0) as i64)
}

/// The start of an answer, for a log line or an error: one line, at most 200 characters.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

async fn graphql(
    client: &reqwest::Client,
    api_base: &str,
    key: &Secret,
    query: &str,
    variables: Value,
) -> Result<Value, RepairOutcome> {
    let req = client
        .post(format!("{api_base}/graphql/v2"))
        .bearer_auth(&key.0)
        .json(&json!({"query": query, "variables": variables}));
    let body = send(req).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| failed(format!("not a GraphQL answer: {}", snippet(&body))))?;
    if let Some(e) = v["errors"].as_array().and_then(|e| e.first()) {
        let msg = e["message"].as_str().unwrap_or("unknown error");
        return Err(failed(format!(
            "GraphQL error: {}",
            snippet(msg.as_bytes())
        )));
    }
    Ok(v["data"].clone())
}

/// Railway: restart = the latest deployment of (service, environment), then
/// `deploymentRestart(id)`; redeploy = `serviceInstanceRedeploy(serviceId, environmentId)`.
async fn railway(
    client: &reqwest::Client,
    api_base: &str,
    service_id: &str,
    environment_id: &str,
    key: &Secret,
    kind: RepairKind,
) -> RepairOutcome {
    let ids = json!({"serviceId": service_id, "environmentId": environment_id});
    let result = match kind {
        RepairKind::Restart => {
            let lookup = "query latest($serviceId: String!, $environmentId: String!) { \
                          serviceInstance(serviceId: $serviceId, environmentId: $environmentId) \
                          { latestDeployment { id } } }";
            match graphql(client, api_base, key, lookup, ids).await {
                Ok(data) => match data["serviceInstance"]["latestDeployment"]["id"].as_str() {
                    Some(id) => {
                        let restart =
                            "mutation restart($id: String!) { deploymentRestart(id: $id) }";
                        graphql(client, api_base, key, restart, json!({"id": id})).await
                    }
                    None => Err(failed("Railway knows no deployment of this service")),
                },
                Err(o) => Err(o),
            }
        }
        RepairKind::Redeploy => {
            let redeploy = "mutation redeploy($serviceId: String!, $environmentId: String!) { \
                            serviceInstanceRedeploy(serviceId: $serviceId, environmentId: $environmentId) }";
            graphql(client, api_base, key, redeploy, ids).await
        }
    };
    match result {
        Ok(_) => RepairOutcome::Done,
        Err(o) => o,
    }
}

/// `sh -c command`: exit 0 is done; killed at the timeout (the caller's).
async fn run_command(command: &str) -> RepairOutcome {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start the command: {e}")),
    };
    match child.wait_with_output().await {
        Ok(out) if out.status.success() => RepairOutcome::Done,
        Ok(out) => failed(format!(
            "the command exited with {}: {}",
            out.status,
            snippet(&out.stderr)
        )),
        Err(e) => failed(format!("the command failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_either_header() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert("ratelimit-reset", "2".parse().unwrap());
        assert_eq!(retry_after_ms(&h), Some(2000));
        h.insert("retry-after", "0.5".parse().unwrap());
        assert_eq!(retry_after_ms(&h), Some(500));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after_ms(&h), Some(2000), "a bad one is skipped");
    }

    #[test]
    fn snippets_are_one_short_line() {
        let s = snippet(format!("a\nb\r\n{}", "x".repeat(500)).as_bytes());
        assert!(!s.contains('\n') && s.chars().count() <= 200);
    }
}
