//! The real application, started in-process on port 0 with its own actix system on a thread,
//! plus the stores it runs on: a SQLite file in a temporary folder, or a fresh PostgreSQL
//! database on the server `TEST_DATABASE_URL` names.

use proxyvisor::config::Config;
use proxyvisor::startup::Application;
use serde_json::Value;
use std::sync::mpsc;
use std::thread::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub port: u16,
    /// Where the gateway listens, when `[gateway] enabled` (its binds forced to port 0).
    pub gateway: Option<proxyvisor::gateway::Addrs>,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
    /// The app's data directory when the config names none (not the test's working folder).
    _data_dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts the application with this TOML config (its `[server] bind` is forced to port 0).
    pub async fn start(toml: &str) -> TestApp {
        // The ring logger, once for the test process: what the app logs (down to trace) is
        // kept for `GET /api/logs` and for tests to read (`proxyvisor::logbuf::ring()`).
        proxyvisor::logbuf::install();
        let client = http_client();
        let mut config = Config::from_toml(toml).expect("test config parses");
        config.server.bind = "127.0.0.1:0".into();
        config.server.admin_token = Some(ADMIN_TOKEN.into());
        // The gateway on port 0 too, unless the test chose its address.
        if !config.gateway.bind.starts_with("127.0.0.1:") {
            config.gateway.bind = "127.0.0.1:0".into();
        }
        if config.gateway.socks_bind.is_some() {
            config.gateway.socks_bind = Some("127.0.0.1:0".into());
        }
        let data_dir = match config.database.data_dir {
            Some(_) => None,
            None => {
                let d = tempfile::tempdir().expect("a temporary folder");
                config.database.data_dir = Some(d.path().to_path_buf());
                Some(d)
            }
        };
        config.validate().expect("test config is valid");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                match Application::build(config).await {
                    Ok(app) => {
                        tx.send(Ok((app.port(), app.gateway(), app.handle())))
                            .unwrap();
                        app.run_until_stopped().await.unwrap();
                    }
                    Err(e) => tx.send(Err(e.to_string())).unwrap(),
                }
            })
        });
        let (port, gateway, handle) = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap()
            .expect("application starts");
        TestApp {
            port,
            gateway,
            client,
            handle,
            thread: Some(thread),
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request answered")
    }

    /// GET returning (status, JSON body).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// POST a JSON body, returning (status, JSON body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request answered");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(ADMIN_TOKEN), None)
            .await
    }

    /// Any request, with an optional bearer token and JSON body: (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self.client.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.expect("request answered");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// The proxies `/list` serves (serving tiers only).
    pub async fn serving(&self) -> Vec<String> {
        let body = self.get("/list").await.text().await.unwrap();
        body.lines().map(str::to_string).collect()
    }

    /// Stops gracefully (final write to the store included) and waits for the thread.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.thread.take() {
            tokio::task::spawn_blocking(move || t.join().unwrap())
                .await
                .unwrap();
        }
    }
}

/// A client for talking to the app on loopback (never through an environment proxy).
pub fn http_client() -> reqwest::Client {
    proxyvisor::net::shared_tls_config(); // installs the rustls provider reqwest needs
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A database for one test: `(url, guard)`; the guard keeps a temporary folder alive.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    /// The server's URL and the database made for the test, dropped with the guard.
    Postgres {
        base: String,
        name: String,
    },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        if let TestDb::Postgres { base, name } = self {
            if let Ok(mut conn) = PgConnection::establish(base) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

pub fn sqlite_db() -> (String, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/proxyvisor.db", dir.path().display());
    (url, TestDb::Sqlite(dir))
}

/// A fresh, empty PostgreSQL database, or `None` (with a printed notice) when
/// `TEST_DATABASE_URL` is not set.
pub fn postgres_db(test: &str) -> Option<(String, TestDb)> {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("NOTICE: {test} skipped: TEST_DATABASE_URL is not set (no PostgreSQL)");
        return None;
    };
    let name = format!(
        "proxyvisor_{}_{}",
        test,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut conn = PgConnection::establish(&base).expect("TEST_DATABASE_URL connects");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    let url = format!("{prefix}/{name}");
    Some((url, TestDb::Postgres { base, name }))
}
