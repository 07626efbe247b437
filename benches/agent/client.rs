//! A minimal MCP Streamable HTTP client (2025-11-25): `initialize` → `Mcp-Session-Id` →
//! `notifications/initialized`, then requests answered as JSON or as an SSE stream
//! (`data:` lines), and `DELETE` to end the session.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use anyhow::{bail, Context};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

const PROTOCOL: &str = "2025-11-25";
/// Time limit of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One MCP session with the gateway.
pub struct Session {
    agent: ureq::Agent,
    url: String,
    sid: String,
    next_id: u64,
}

impl Session {
    /// Opens a session: `initialize` (no client capabilities) and `notifications/initialized`.
    pub fn open(url: &str) -> anyhow::Result<Session> {
        let agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build();
        let mut s = Session {
            agent,
            url: url.to_string(),
            sid: String::new(),
            next_id: 1,
        };
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL}","capabilities":{{}},"clientInfo":{{"name":"agent-bench","version":"1"}}}}}}"#
        );
        let resp = s.post(&init)?;
        s.sid = resp
            .header("mcp-session-id")
            .context("initialize answered without Mcp-Session-Id")?
            .to_string();
        let msg = read_message(resp, 0)?;
        if msg["result"]["protocolVersion"].as_str().is_none() {
            bail!("initialize failed: {}", sonic_rs::to_string(&msg)?);
        }
        let resp = s.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        if resp.status() != 202 {
            bail!("notifications/initialized answered {}", resp.status());
        }
        Ok(s)
    }

    fn post(&self, body: &str) -> anyhow::Result<ureq::Response> {
        let mut r = self
            .agent
            .post(&self.url)
            .set("content-type", "application/json")
            .set("accept", "application/json, text/event-stream")
            .set("mcp-protocol-version", PROTOCOL);
        if !self.sid.is_empty() {
            r = r.set("mcp-session-id", &self.sid);
        }
        match r.send_string(body) {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(code, resp)) => bail!(
                "HTTP {code} for {}: {}",
                short(body, 120),
                short(&resp.into_string().unwrap_or_default(), 300)
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a request; the JSON-RPC response to it (with `result` or `error`).
    pub fn request(&mut self, method: &str, params: &str) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
        read_message(self.post(&body)?, id)
    }

    /// `tools/list`, every page (`nextCursor` followed).
    pub fn list_tools(&mut self) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let params = match &cursor {
                Some(c) => format!(r#"{{"cursor":{}}}"#, sonic_rs::to_string(c)?),
                None => "{}".into(),
            };
            let msg = self.request("tools/list", &params)?;
            let tools = msg["result"]["tools"]
                .as_array()
                .with_context(|| format!("tools/list: {}", sonic_rs::to_string(&msg).unwrap()))?;
            all.extend(tools.iter().cloned());
            match msg["result"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(all),
            }
        }
        bail!("tools/list pagination does not end")
    }

    /// `tools/call` of `name` with `arguments` (a JSON object's text).
    pub fn call(&mut self, name: &str, arguments: &str) -> anyhow::Result<Value> {
        let params = format!(
            r#"{{"name":{},"arguments":{arguments}}}"#,
            sonic_rs::to_string(name)?
        );
        self.request("tools/call", &params)
    }

    /// Ends the session (`DELETE`).
    pub fn close(self) -> anyhow::Result<()> {
        let r = self
            .agent
            .delete(&self.url)
            .set("mcp-session-id", &self.sid)
            .set("mcp-protocol-version", PROTOCOL)
            .call();
        match r {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, _)) => bail!("DELETE of the session answered {code}"),
            Err(e) => Err(e.into()),
        }
    }
}

/// The JSON-RPC response with this id, from a JSON body or an SSE stream (read only up to
/// that response: the stream need not end).
fn read_message(resp: ureq::Response, id: u64) -> anyhow::Result<Value> {
    let sse = resp.content_type() == "text/event-stream";
    let ours = |v: &Value| {
        v["id"].as_u64() == Some(id) && (v.get("result").is_some() || v.get("error").is_some())
    };
    let mut reader = BufReader::new(resp.into_reader());
    if !sse {
        let mut body = String::new();
        reader.read_to_string(&mut body)?;
        let v: Value = sonic_rs::from_str(&body)
            .with_context(|| format!("not JSON: {}", short(&body, 300)))?;
        if ours(&v) {
            return Ok(v);
        }
        bail!("no response to request {id}: {}", short(&body, 300));
    }
    // Events are separated by blank lines; an event's `data:` lines join with '\n'.
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let eof = reader.read_line(&mut line)? == 0;
        let l = line.trim_end_matches(['\r', '\n']);
        if let Some(d) = l.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if (l.is_empty() || eof) && !data.is_empty() {
            let v: Value = sonic_rs::from_str(&data)
                .with_context(|| format!("SSE data is not JSON: {}", short(&data, 300)))?;
            if ours(&v) {
                return Ok(v);
            }
            data.clear();
        }
        if eof {
            bail!("SSE stream ended without a response to request {id}");
        }
    }
}

/// The first `n` characters of `s`.
pub fn short(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
