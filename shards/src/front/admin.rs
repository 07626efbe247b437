//! Readiness and drain over HTTP: `GET /ready` for load balancers, `POST /admin/drain` and
//! `POST /admin/undrain` for operators.
//!
//! `/ready` reads the node's [`SharedReadiness`] (one atomic load) and answers 200 while the
//! node takes new sessions, 503 while it is starting, draining or stopping, with a body that
//! says only that: `{"ready":false,"state":"draining"}`. It needs no credentials (a balancer
//! checks it) and is not `/health`, which stays liveness and lists the backends.
//!
//! The admin endpoints change the state, so they sit behind the same authentication as
//! `/metrics` and, like `/mcp`, behind the Host/Origin guard: a web page must not be able to
//! drain a gateway on the machine its browser runs on. Draining stops nothing: sessions,
//! calls and streams go on, and a new `initialize` is still served (and counted). A stopping
//! node cannot be undrained (409).

use std::rc::Rc;

use crate::front::LocalFront;
use crate::http::request::{ConnBuffers, Method, Request};
use crate::http::response::Reply;
use crate::readiness::{Readiness, SharedReadiness, Transition};

/// Serves `/ready`, `/admin/drain` or `/admin/undrain` (the request's path is one of them).
pub fn serve(front: &Rc<LocalFront>, req: &Request, bufs: &ConnBuffers) -> Reply {
    let readiness = &front.router.readiness;
    match &bufs.buf[req.path.clone()] {
        b"/ready" => match req.method {
            Method::Get | Method::Head => state_reply(readiness.state()),
            _ => not_allowed("use GET or HEAD", "GET, HEAD"),
        },
        path => {
            if req.method != Method::Post {
                return not_allowed("use POST", "POST");
            }
            let h = &req.headers;
            if let Err(why) = front.policy.check(bufs.text(&h.host), bufs.text(&h.origin)) {
                return Reply::text(403, &format!("forbidden: {why}"));
            }
            let principal = match crate::front::http::authenticate(front, req, bufs) {
                Ok(p) => p,
                Err(refused) => return *refused,
            };
            let drain = path == b"/admin/drain";
            let t = change(readiness, drain);
            if t.changed() {
                tracing::info!(
                    shard = front.router.id,
                    principal = %principal.name,
                    from = t.from.as_str(),
                    to = t.to.as_str(),
                    "{} over HTTP: /ready now answers {}",
                    if drain { "drain" } else { "undrain" },
                    if t.to.accepting() { 200 } else { 503 },
                );
            }
            // The body says where the node is now; the status, whether the request was done.
            let mut r = state_reply(t.to);
            r.status = if !drain && t.to == Readiness::Stopping {
                409
            } else {
                200
            };
            r
        }
    }
}

/// Drains or undrains.
fn change(readiness: &SharedReadiness, drain: bool) -> Transition {
    if drain {
        readiness.drain()
    } else {
        readiness.undrain()
    }
}

/// The `/ready` answer for `state`: 200 when it takes new sessions, else 503.
fn state_reply(state: Readiness) -> Reply {
    let status = if state.accepting() { 200 } else { 503 };
    Reply::json(status, state_body(state).to_vec())
}

/// `{"ready":…,"state":…}`: what the node says about itself, and nothing more.
fn state_body(state: Readiness) -> &'static [u8] {
    match state {
        Readiness::Starting => br#"{"ready":false,"state":"starting"}"#,
        Readiness::Ready => br#"{"ready":true,"state":"ready"}"#,
        Readiness::Draining => br#"{"ready":false,"state":"draining"}"#,
        Readiness::Stopping => br#"{"ready":false,"state":"stopping"}"#,
    }
}

fn not_allowed(msg: &str, allow: &'static str) -> Reply {
    let mut r = Reply::text(405, msg);
    r.allow = Some(allow);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_status_and_body() {
        for state in Readiness::ALL {
            let r = state_reply(state);
            let v: sonic_rs::Value = sonic_rs::from_slice(&r.body).unwrap();
            use sonic_rs::JsonValueTrait;
            assert_eq!(v["state"].as_str(), Some(state.as_str()));
            assert_eq!(v["ready"].as_bool(), Some(state.accepting()));
            assert_eq!(r.status, if state == Readiness::Ready { 200 } else { 503 });
        }
    }

    #[test]
    fn undrain_cannot_end_a_shutdown() {
        let r = SharedReadiness::new();
        r.warm();
        assert_eq!(change(&r, true).to, Readiness::Draining);
        assert_eq!(change(&r, false).to, Readiness::Ready);
        r.stop();
        assert_eq!(change(&r, false).to, Readiness::Stopping);
        assert_eq!(change(&r, true).to, Readiness::Stopping);
    }
}
