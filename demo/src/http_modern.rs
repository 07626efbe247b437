//! The 2026-07-28 (stateless) side of the Streamable HTTP transport.
//!
//! Owns what a modern POST gets once `http.rs` has classified it (see
//! `modern::is_modern_http`): no session is created or read, and no
//! `Mcp-Session-Id` is sent.
//!
//! * A notification gets 202 with no body; a posted response 400 (this
//!   server never sends requests to the client).
//! * A request is validated (`modern::check`, then `headers::validate`);
//!   failures are 400 (404 for an unknown method) with a JSON-RPC error
//!   echoing the request id.
//! * `subscriptions/listen` gets an SSE stream that stays open
//!   (`subscriptions::serve`), with a keep-alive comment every 15 s; it ends
//!   when the client disconnects.
//! * Any other request is answered like on the legacy path: JSON, or SSE
//!   as soon as it emits a related message (progress, logs at the `_meta`
//!   logLevel), the reply being the stream's last event. There are no
//!   server→client requests, and no resumption (`Last-Event-ID` is
//!   ignored).

use super::conn::Conn;
use std::io;
use std::time::Duration;

use sonic_rs::{JsonValueTrait, Value};

use super::headers;
use super::http::{accepts_sse, rpc_error};
use super::http1::{end_sse, respond, write_event, write_sse, write_sse_head, Request};
use super::http_stream::PostStream;
use super::modern::{self, Answer, HEADER_MISMATCH};
use super::protocol::{Message, INVALID_PARAMS};
use super::server::Server;
use super::subscriptions::{self, Filter, ListenOut};

const KEEPALIVE: Duration = Duration::from_secs(15);

fn answer(out: &mut Conn, answer: &Answer, keep_alive: bool) -> io::Result<bool> {
    let fallback = rpc_error("Internal error");
    let json = answer.json().unwrap_or(&fallback);
    respond(out, answer.status, &[], Some(json), keep_alive)
}

/// Serves one modern POST (module docs).
pub fn post(server: &Server, req: &Request, msg: Message, out: &mut Conn) -> io::Result<bool> {
    let ka = req.keep_alive;
    let (id, method, params) = match msg {
        Message::Request { id, method, params } => (id, method, params),
        Message::Notification { .. } => return respond(out, 202, &[], None, ka),
        Message::Response { .. } => {
            let msg = "Bad Request: this server sends no requests, so it accepts no responses";
            return respond(out, 400, &[], Some(&rpc_error(msg)), ka);
        }
    };
    let meta = match modern::check(&id, &params, Some(req.header("mcp-protocol-version"))) {
        Ok(meta) => meta,
        Err(refusal) => return answer(out, &refusal, ka),
    };
    let tool = match method.as_str() {
        "tools/call" => {
            let name = params.get("name").and_then(|n| n.as_str());
            modern::tool_definitions(server)
                .into_iter()
                .find(|t| name.is_some() && t.get("name").and_then(|n| n.as_str()) == name)
        }
        _ => None,
    };
    if let Err(msg) = headers::validate(req, &method, &params, tool.as_ref()) {
        return answer(
            out,
            &Answer::error(400, &id, HEADER_MISMATCH, &msg, None),
            ka,
        );
    }
    if method == "subscriptions/listen" {
        return listen(server, &id, &params, out, ka);
    }
    let mut stream = PostStream::new(out, ka, accepts_sse(req), None).with_headers(&req.headers);
    let result = modern::handle(server, &id, &method, &params, &meta, &mut stream);
    let json = result
        .json()
        .map_or_else(|| rpc_error("Internal error"), str::to_string);
    stream.finish_with(result.status, json, &[])
}

/// A listen stream's SSE outlet.
struct Sse<'a> {
    out: &'a mut Conn,
    chunked: bool,
    gone: bool,
}

impl ListenOut for Sse<'_> {
    fn send(&mut self, json: &str) -> bool {
        self.gone |= write_event(self.out, json, self.chunked).is_err();
        !self.gone
    }

    fn idle(&mut self) -> bool {
        self.gone |= write_sse(self.out, ": keep-alive\n\n", self.chunked).is_err();
        !self.gone
    }
}

fn listen(
    server: &Server,
    id: &Value,
    params: &Value,
    out: &mut Conn,
    keep_alive: bool,
) -> io::Result<bool> {
    let filter = match Filter::parse(params, server.config().conformance) {
        Ok(filter) => filter,
        Err(msg) => {
            let refusal = Answer::error(400, id, INVALID_PARAMS, &msg, None);
            return answer(out, &refusal, keep_alive);
        }
    };
    write_sse_head(out, keep_alive)?;
    let mut sse = Sse {
        out,
        chunked: keep_alive,
        gone: false,
    };
    let info = modern::server_info(server);
    subscriptions::serve(server.hub(), id, &filter, &info, None, KEEPALIVE, &mut sse);
    if sse.gone {
        return Ok(false);
    }
    end_sse(sse.out, keep_alive)?;
    Ok(keep_alive)
}
