//! The store through a running server's API: while `tansa serve` holds the store (DuckDB
//! has one writer process), `tansa sql/search/stats/trace/hunt` send their requests to the
//! address the server wrote to `DATA/serve.json`, with its token.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tansa_detect::Alert;
use tansa_store::{
    Backend, Batch, Param, Policy, Request, Response, RetentionReport, SearchRequest, Section,
    StoreError, Table,
};

pub struct Remote {
    /// The server's base URL.
    base: String,
    url: String,
    token: String,
    agent: ureq::Agent,
}

#[derive(serde::Deserialize)]
struct Announce {
    url: String,
    token_file: std::path::PathBuf,
    /// The CA of the API's certificate (over TLS).
    ca: Option<std::path::PathBuf>,
}

impl Remote {
    /// The server that announced itself in `data`, if any.
    pub fn find(data: &Path) -> Result<Option<Remote>> {
        let path = data.join(tansa_server::http::ANNOUNCE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        };
        let a: Announce =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let token = std::fs::read_to_string(&a.token_file)
            .with_context(|| format!("the server's API token {}", a.token_file.display()))?;
        let mut cfg = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false);
        if let Some(ca) = &a.ca {
            let pem =
                std::fs::read(ca).with_context(|| format!("the API's CA {}", ca.display()))?;
            let cert = ureq::tls::Certificate::from_pem(&pem)
                .with_context(|| format!("the API's CA {}", ca.display()))?;
            cfg = cfg.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                    .build(),
            );
        }
        let agent = cfg.build().new_agent();
        Ok(Some(Remote {
            base: a.url.trim_end_matches('/').to_owned(),
            url: format!("{}/api/v1/query", a.url.trim_end_matches('/')),
            token: token.trim().to_owned(),
            agent,
        }))
    }

    fn call(&self, req: &Request) -> Result<Response, StoreError> {
        let fail = |m: String| StoreError::Invalid(format!("{}: {m}", self.url));
        let mut res = self
            .agent
            .post(&self.url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(req).map_err(|e| fail(e.to_string()))?)
            .map_err(|e| {
                fail(format!(
                    "the server does not answer ({e}); is `tansa serve` still running?"
                ))
            })?;
        let ok = res.status().is_success();
        let body = res
            .body_mut()
            .with_config()
            .limit(4 << 30)
            .read_to_string()
            .map_err(|e| fail(e.to_string()))?;
        if !ok {
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(StoreError::Invalid(msg));
        }
        serde_json::from_str(&body).map_err(|e| fail(format!("unreadable answer: {e}")))
    }

    /// Any JSON endpoint of the API (`path` from the root, e.g. `/api/v1/decisions`).
    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(b)?),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        };
        let mut res = sent.with_context(|| {
            format!("{url}: the server does not answer; is `tansa serve` still running?")
        })?;
        let ok = res.status().is_success();
        let text = res
            .body_mut()
            .read_to_string()
            .with_context(|| url.clone())?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{url}: unreadable answer"))?;
        if !ok {
            let m = v["message"]
                .as_str()
                .or(v["error"].as_str())
                .unwrap_or(&text);
            anyhow::bail!("{m}");
        }
        Ok(v)
    }

    fn table(&self, req: &Request) -> Result<Table, StoreError> {
        match self.call(req)? {
            Response::Table(t) => Ok(t),
            Response::Sections { .. } => Err(StoreError::Invalid("expected a table".into())),
        }
    }
}

fn read_only(what: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{what} needs the store itself, which `tansa serve` holds while it runs"
    ))
}

impl Backend for Remote {
    fn checkpoint(&self, _: u64) -> tansa_store::Result<u64> {
        Err(read_only("reading checkpoints"))
    }
    fn source_number(&mut self, _: u64) -> tansa_store::Result<u32> {
        Err(read_only("numbering sources"))
    }
    fn write(&mut self, _: &Batch) -> tansa_store::Result<()> {
        Err(read_only("writing"))
    }
    fn write_alerts(
        &mut self,
        _: &[Alert],
        _: &dyn Fn(&str) -> Option<u32>,
    ) -> tansa_store::Result<()> {
        Err(read_only("writing"))
    }
    fn sql(&self, sql: &str) -> tansa_store::Result<Table> {
        self.table(&Request::Sql {
            sql: sql.to_owned(),
        })
    }
    fn query(&self, sql: &str, params: &[Param]) -> tansa_store::Result<Table> {
        self.table(&Request::Query {
            sql: sql.to_owned(),
            params: params.to_vec(),
        })
    }
    fn search(&self, req: &SearchRequest) -> tansa_store::Result<Table> {
        self.table(&Request::Search(req.clone()))
    }
    fn stats(&self) -> tansa_store::Result<Vec<Section>> {
        match self.call(&Request::Stats)? {
            Response::Sections { sections } => Ok(sections),
            Response::Table(_) => Err(StoreError::Invalid("expected sections".into())),
        }
    }
    fn retention(&mut self, _: &Policy, _: Option<&str>) -> tansa_store::Result<RetentionReport> {
        Err(read_only("retention"))
    }
}
