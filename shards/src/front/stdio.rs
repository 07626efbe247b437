//! The gateway served over stdin/stdout (`only1mcp-uring stdio`), for clients that only
//! launch commands.
//!
//! A reader thread (outside the shards: reading stdin blocks) hands each line to shard 0's
//! mailbox; a writer thread owns stdout. Here each line goes through exactly the same
//! dispatcher as an HTTP POST, inside the one session this client opens with `initialize`:
//! JSON answers become one line, SSE answers become one line per message, and the session's
//! GET stream (list changes, resource updates) is opened right after `initialize` and pumped
//! to stdout too. Requests run concurrently; answers carry their ids, so order does not matter.

use std::cell::RefCell;
use std::rc::Rc;

use crate::front::LocalFront;
use crate::http::request::Method;
use crate::http::response::Reply;
use crate::route::dispatch::handle;
use crate::route::request::McpHttpRequest;

/// The stdio client's side of shard 0.
pub struct LocalStdioFront {
    out: crossbeam_channel::Sender<Vec<u8>>,
    session: RefCell<Option<String>>,
}

impl LocalStdioFront {
    /// A front writing to `out` (one message per item; the writer adds the newline).
    pub fn new(out: crossbeam_channel::Sender<Vec<u8>>) -> Self {
        LocalStdioFront {
            out,
            session: RefCell::new(None),
        }
    }

    pub(crate) fn write(&self, msg: Vec<u8>) {
        // Messages must be single lines; the gateway never pretty-prints, but a backend's
        // message could carry a raw newline between tokens, which JSON allows.
        let msg = if msg.contains(&b'\n') {
            msg.into_iter()
                .filter(|b| *b != b'\n' && *b != b'\r')
                .collect()
        } else {
            msg
        };
        let _ = self.out.send(msg);
    }
}

async fn pump(front: Rc<LocalFront>, mut rx: crate::rt::feed::FeedRx) {
    while let Some(item) = crate::rt::next(&mut rx).await {
        let (_, m) = crate::http::response::untag_event(&item);
        if let (Some(f), false) = (&front.stdio, m.is_empty()) {
            f.write(m.to_vec());
        }
    }
}

async fn deliver(fr: &Rc<LocalFront>, mut reply: Reply) {
    let Some(front) = &fr.stdio else {
        return;
    };
    if let Some(rx) = reply.stream.take() {
        pump(fr.clone(), rx).await;
    } else if reply.body_len() > 0 && reply.content_type == Some("application/json") {
        // One line on stdout: a body in parts is joined here.
        let body = match reply.shared.is_some() {
            true => reply.body_bytes().into_owned(),
            false => std::mem::take(&mut reply.body),
        };
        front.write(body);
    }
}

/// Handles one line from the client's stdin. Until the session exists lines are handled in
/// order (so `notifications/initialized` cannot overtake `initialize`); after that each line
/// runs as its own task.
pub async fn line(fr: &Rc<LocalFront>, line: Vec<u8>) {
    let Some(front) = &fr.stdio else {
        return;
    };
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let session = front.session.borrow().clone();
    let in_order = session.is_none();
    let is_request = matches!(
        crate::wire::jsonrpc::Envelope::parse(&line).map(|e| e.kind),
        Ok(crate::wire::jsonrpc::Kind::Request) | Err(_)
    );
    // A batch (2025-03-26 sessions): its responses go out as one line (`stdio_batch.rs`).
    let batch = crate::wire::batch::is_array(&line);
    let fr = fr.clone();
    if in_order {
        // The one client of a stdio gateway initializes at once, usually before the
        // backends are discovered; capabilities are fixed at initialize, so wait (bounded)
        // for discovery to settle rather than advertise less than the gateway will serve.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < deadline
            && fr
                .router
                .snapshot
                .load()
                .catalog
                .reports
                .iter()
                .any(|r| r.state == crate::catalog::BackendState::Starting)
        {
            monoio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let task = async move {
        let req = McpHttpRequest {
            method: Method::Post,
            session_id: session.map(Into::into),
            protocol_version: None,
            accepts_sse: true,
            last_event_id: None,
            mcp_method: None,
            mcp_name: None,
            mcp_params: None,
            affinity: Default::default(),
            principal: fr.router.snapshot.load().auth.anonymous.clone(),
            discovery: fr.router.snapshot.load().config.proxy.discovery,
            trace: crate::trace::Incoming {
                stdio: true,
                ..Default::default()
            },
            body: line,
        };
        fr.inflight.set(fr.inflight.get() + 1);
        let mut reply = handle(&fr.router, req, true).await;
        fr.inflight.set(fr.inflight.get() - 1);
        if let Some(sid) = reply.session_id.take() {
            // initialize: this is the client's session from now on; open its GET stream.
            if let Some(front) = &fr.stdio {
                *front.session.borrow_mut() = Some(sid.clone());
            }
            let get = McpHttpRequest {
                method: Method::Get,
                session_id: Some(sid.into()),
                protocol_version: None,
                accepts_sse: true,
                last_event_id: None,
                mcp_method: None,
                mcp_name: None,
                mcp_params: None,
                affinity: Default::default(),
                principal: fr.router.snapshot.load().auth.anonymous.clone(),
                discovery: crate::config::Discovery::Full,
                trace: Default::default(),
                body: Vec::new(),
            };
            let stream = handle(&fr.router, get, true).await;
            deliver(&fr, reply).await;
            monoio::spawn({
                let fr = fr.clone();
                async move { deliver(&fr, stream).await }
            });
            return;
        }
        if batch {
            return crate::front::stdio_batch::deliver(&fr, reply).await;
        }
        if !is_request {
            // Notifications and responses never get an answer on stdio.
            if reply.status >= 400 {
                tracing::warn!(status = reply.status, "stdio client notification refused");
            }
            return;
        }
        deliver(&fr, reply).await;
    };
    if in_order {
        task.await;
    } else {
        monoio::spawn(task);
    }
}
