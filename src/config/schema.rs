//! What the API document says of the config tables the admin API takes as bodies, where
//! derive attributes cannot say it: patterns of what the validators accept, and the shape of
//! `recovery` per action.

use super::RecoveryConfig;

/// What [`http_url`] accepts, as a JSON Schema pattern (for the API document; narrower than
/// the rule only where the `url` crate is lenient).
pub const HTTP_URL_PATTERN: &str = r"^https?://([A-Za-z0-9._~-]+(:[A-Za-z0-9._~-]*)?@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9-]{1,62}\.){0,3}[A-Za-z][A-Za-z0-9-]{0,61})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?$";

/// Text with something besides blanks (what `str::trim` leaves), as a JSON Schema pattern.
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A provider's id: letters, digits, `-` and `_`, at most 128 (around blanks trimmed).
pub const ID_PATTERN: &str = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{1,128}[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// A provider's host root (`https://api.render.com`), as a JSON Schema pattern.
pub const API_BASE_PATTERN: &str = r"^https?://((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9-]{1,62}\.){0,3}[A-Za-z][A-Za-z0-9-]{0,61})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/*$";

impl RecoveryConfig {
    /// The JSON Schema of `recovery` as the admin API takes it: one shape per `action`, each
    /// with the fields that action requires (`command` is for the config file only). What no
    /// schema can say: `api_key_env` instead of `api_key` works when that variable is set.
    pub fn api_schema() -> serde_json::Value {
        use serde_json::json;
        let url = json!({"type": "string", "pattern": HTTP_URL_PATTERN});
        let text = json!({"type": "string", "pattern": NOT_BLANK_PATTERN});
        let id = json!({"type": "string", "pattern": ID_PATTERN});
        let optional = |v: &serde_json::Value| json!({"oneOf": [v, {"type": "null"}]});
        let properties = |action: &str, then: &[&str]| {
            let mut then: Vec<serde_json::Value> = then.iter().map(|t| json!(t)).collect();
            then.push(serde_json::Value::Null);
            json!({
                "action": {"const": action},
                "service_id": {"type": ["string", "null"]},
                "environment_id": {"type": ["string", "null"]},
                "api_key_env": {"type": ["string", "null"]},
                "api_key": {"type": ["string", "null"]},
                "api_base": optional(&json!({"type": "string", "pattern": API_BASE_PATTERN})),
                "url": {"type": ["string", "null"]},
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", null]},
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
                    "additionalProperties": {"type": "string", "pattern": "^[^\\x00-\\x08\\x0a-\\x1f\\x7f]*$"},
                },
                "body": {"type": ["string", "null"]},
                "command": {"type": ["string", "null"]},
                "cooldown_secs": {"type": "number", "minimum": 0, "maximum": 86400},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 4294967295_u64},
                "then": {"enum": then},
                "timeout_secs": {"type": "number", "minimum": 0, "maximum": 86400},
            })
        };
        let shape = |action: &str, then: &[&str], required: &[&str], more: serde_json::Value| {
            let mut props = properties(action, then);
            if let (Some(p), serde_json::Value::Object(m)) = (props.as_object_mut(), more) {
                p.extend(m);
            }
            json!({
                "type": "object",
                "title": action,
                "properties": props,
                "required": required,
                "additionalProperties": false,
            })
        };
        json!({
            "description": "What is done when the service is down (default: nothing). \
                `api_key` may be replaced by `api_key_env`, the name of an environment \
                variable of the service's host that holds the key.",
            "oneOf": [
                shape("none", &["alert"], &[], json!({})),
                shape("render", &["redeploy", "alert"], &["action", "service_id", "api_key"],
                      json!({"service_id": id, "api_key": text})),
                shape("railway", &["redeploy", "alert"],
                      &["action", "service_id", "environment_id", "api_key"],
                      json!({"service_id": text, "environment_id": text, "api_key": text})),
                shape("webhook", &["alert"], &["action", "url"], json!({"url": url})),
            ],
        })
    }
}
