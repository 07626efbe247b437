//! OpenTelemetry traces end to end, on both drivers: the gateway exports to a real OTLP/HTTP
//! receiver (`tests/otel/otlp_receiver.py`, which decodes with the `opentelemetry-proto`
//! package), in front of a recording backend (`tests/otel/recorder.py`, over HTTP and over
//! stdio) whose `where` tool answers with the trace context it received.
//!
//! Checked: span names, MCP attributes, SERVER/CLIENT kinds, parent/child links, trace id
//! continuity from a client's `traceparent` header through the gateway to the HTTP backend's
//! header and `_meta`, the stdio backend's `_meta`, `_meta` winning over the header (which
//! becomes a link), error status on a JSON-RPC error, sampling 0 exporting nothing while
//! still propagating an unsampled context, tracing off leaving a client's `_meta` alone, and
//! a dead endpoint: the gateway keeps serving and counts the drops.

mod common;

#[path = "otel/kit.rs"]
mod kit;

use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use kit::*;
use sonic_rs::JsonValueTrait;

#[test]
fn spans_follow_the_mcp_conventions_and_the_context_reaches_every_backend() {
    for driver in DRIVERS {
        let rx = receiver();
        let be = Py::start(&[&script("recorder.py"), "--http"]);
        let endpoint = format!("http://127.0.0.1:{}", rx.port);
        let cfg = config(&telemetry(&endpoint, 1.0), be.port);
        let gw = Gateway::start(&cfg, driver, 2, &["rec", "srec"]);
        let sid = gw.initialize();

        // 1. The client's header context: the HTTP backend gets it as header and _meta.
        let tp = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
        let a = call(
            &gw,
            &sid,
            "7",
            "rec__where",
            "",
            &[("traceparent", &tp), ("tracestate", "k=v")],
        );
        let got = seen(&a);
        let (h_trace, h_parent, h_flags) = tp_parts(s(&got, "traceparent"));
        assert_eq!(
            (h_trace.as_str(), h_flags.as_str()),
            (CLIENT_TRACE, "01"),
            "{driver}"
        );
        assert_ne!(
            h_parent, CLIENT_SPAN,
            "{driver}: the gateway's span is the parent"
        );
        assert_eq!(s(&got, "tracestate"), "k=v", "{driver}");
        assert_eq!(
            s(&got["meta"], "traceparent"),
            s(&got, "traceparent"),
            "{driver}"
        );
        assert_eq!(s(&got["meta"], "tracestate"), "k=v", "{driver}");

        let all = wait_spans(&rx, "a server and a client span", |v| {
            v.iter()
                .filter(|x| s(x, "trace_id") == CLIENT_TRACE)
                .count()
                >= 2
        });
        let server = all
            .iter()
            .find(|x| s(x, "trace_id") == CLIENT_TRACE && x["kind"].as_u64() == Some(2))
            .expect("server span");
        let client = all
            .iter()
            .find(|x| s(x, "trace_id") == CLIENT_TRACE && x["kind"].as_u64() == Some(3))
            .expect("client span");
        assert_eq!(s(server, "name"), "tools/call rec__where", "{driver}");
        assert_eq!(s(server, "parent_span_id"), CLIENT_SPAN, "{driver}");
        assert_eq!(s(server, "trace_state"), "k=v", "{driver}");
        assert_eq!(
            s(&server["resource"], "service.name"),
            "gw-test",
            "{driver}"
        );
        for (k, want) in [
            ("mcp.method.name", "tools/call"),
            ("mcp.session.id", sid.as_str()),
            ("mcp.protocol.version", "2025-11-25"),
            ("jsonrpc.request.id", "7"),
            ("gen_ai.tool.name", "rec__where"),
            ("gen_ai.operation.name", "execute_tool"),
            ("network.transport", "tcp"),
        ] {
            assert_eq!(
                attr(server, k).as_str(),
                Some(want),
                "{driver} server {k}: {server:?}"
            );
        }
        assert_eq!(server["status_code"].as_u64(), Some(0), "{driver}");
        assert_eq!(s(client, "name"), "tools/call where", "{driver}");
        assert_eq!(
            s(client, "parent_span_id"),
            s(server, "span_id"),
            "{driver}"
        );
        assert_eq!(
            s(client, "span_id"),
            h_parent,
            "{driver}: the backend's parent is the client span"
        );
        assert_eq!(
            attr(client, "gen_ai.tool.name").as_str(),
            Some("where"),
            "{driver}"
        );
        assert_eq!(
            attr(client, "server.address").as_str(),
            Some("127.0.0.1"),
            "{driver}"
        );
        assert_eq!(
            attr(client, "server.port").as_i64(),
            Some(i64::from(be.port)),
            "{driver}"
        );
        assert_eq!(
            attr(client, "network.transport").as_str(),
            Some("tcp"),
            "{driver}"
        );
        assert!(
            server["start"].as_u64() <= client["start"].as_u64(),
            "{driver}"
        );
        assert!(
            client["end"].as_u64() >= client["start"].as_u64(),
            "{driver}"
        );

        // 2. _meta wins over the header (which becomes a link); the stdio backend gets it.
        let meta_trace = "11112222333344445555666677778888";
        let meta = format!(r#"{{"traceparent":"00-{meta_trace}-aaaabbbbccccdddd-01"}}"#);
        let a = call(
            &gw,
            &sid,
            "\"s-1\"",
            "srec__where",
            &meta,
            &[("traceparent", &tp)],
        );
        let got = seen(&a);
        assert!(
            got["traceparent"].is_null(),
            "{driver}: stdio has no headers"
        );
        let (m_trace, m_parent, _) = tp_parts(s(&got["meta"], "traceparent"));
        assert_eq!(m_trace, meta_trace, "{driver}");
        let all = wait_spans(&rx, "the stdio call's spans", |v| {
            v.iter().filter(|x| s(x, "trace_id") == meta_trace).count() >= 2
        });
        let server = all
            .iter()
            .find(|x| s(x, "trace_id") == meta_trace && x["kind"].as_u64() == Some(2))
            .unwrap();
        let client = all
            .iter()
            .find(|x| s(x, "trace_id") == meta_trace && x["kind"].as_u64() == Some(3))
            .unwrap();
        assert_eq!(s(server, "parent_span_id"), "aaaabbbbccccdddd", "{driver}");
        assert_eq!(
            s(&server["links"][0], "trace_id"),
            CLIENT_TRACE,
            "{driver}: {server:?}"
        );
        assert_eq!(
            attr(server, "jsonrpc.request.id").as_str(),
            Some("s-1"),
            "{driver}"
        );
        assert_eq!(s(client, "span_id"), m_parent, "{driver}");
        assert_eq!(
            attr(client, "network.transport").as_str(),
            Some("pipe"),
            "{driver}"
        );
        assert!(attr(client, "server.address").is_null(), "{driver}");

        // 3. A JSON-RPC error: ERROR status with the code, on both spans.
        let err_trace = "99990000999900009999000099990000";
        let tp = format!("00-{err_trace}-1234123412341234-01");
        let a = call(&gw, &sid, "8", "rec__fail", "", &[("traceparent", &tp)]);
        assert_eq!(a["error"]["code"].as_i64(), Some(-32000), "{a:?}");
        let all = wait_spans(&rx, "the error spans", |v| {
            v.iter().filter(|x| s(x, "trace_id") == err_trace).count() >= 2
        });
        for span in all.iter().filter(|x| s(x, "trace_id") == err_trace) {
            assert_eq!(span["status_code"].as_u64(), Some(2), "{driver}: {span:?}");
            assert_eq!(s(span, "status_message"), "boom", "{driver}");
            assert_eq!(
                attr(span, "error.type").as_str(),
                Some("-32000"),
                "{driver}"
            );
            assert_eq!(
                attr(span, "rpc.response.status_code").as_str(),
                Some("-32000"),
                "{driver}"
            );
        }

        // 4. A stateless 2026-07-28 request: its `_meta` context, its version, no session.
        let modern_trace = "aaaa0000bbbb0000cccc0000dddd0000";
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{{"name":"rec__where","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}},"traceparent":"00-{modern_trace}-0123456789abcdef-01"}}}}}}"#
        );
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "rec__where"),
        ];
        let r = gw.post(&h, &body);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let got = seen(&r.answer());
        let (t, _, _) = tp_parts(s(&got["meta"], "traceparent"));
        assert_eq!(t, modern_trace, "{driver}");
        let all = wait_spans(&rx, "the 2026 request's spans", |v| {
            v.iter()
                .filter(|x| s(x, "trace_id") == modern_trace)
                .count()
                >= 2
        });
        let server = all
            .iter()
            .find(|x| s(x, "trace_id") == modern_trace && x["kind"].as_u64() == Some(2))
            .unwrap();
        assert_eq!(s(server, "parent_span_id"), "0123456789abcdef", "{driver}");
        assert_eq!(
            attr(server, "mcp.protocol.version").as_str(),
            Some("2026-07-28"),
            "{driver}"
        );
        assert!(
            attr(server, "mcp.session.id").is_null(),
            "{driver}: stateless"
        );
        assert_eq!(
            attr(server, "jsonrpc.request.id").as_str(),
            Some("12"),
            "{driver}"
        );

        // 5. A malformed traceparent (uppercase) starts a fresh trace.
        let bad = format!("00-{}-{CLIENT_SPAN}-01", CLIENT_TRACE.to_uppercase());
        let got = seen(&call(
            &gw,
            &sid,
            "9",
            "rec__where",
            "",
            &[("traceparent", &bad)],
        ));
        let (t, _, f) = tp_parts(s(&got, "traceparent"));
        assert_ne!(t, CLIENT_TRACE, "{driver}");
        assert_eq!(f, "01", "{driver}: ratio 1 samples a new trace");
        let m = gw.get("/metrics").text();
        assert!(m.contains("only1mcp_trace_spans_exported_total"), "{m}");
    }
}

#[test]
fn sampling_zero_exports_nothing_but_still_propagates() {
    for driver in DRIVERS {
        let rx = receiver();
        let be = Py::start(&[&script("recorder.py"), "--http"]);
        let cfg = config(
            &telemetry(&format!("http://127.0.0.1:{}", rx.port), 0.0),
            be.port,
        );
        let gw = Gateway::start(&cfg, driver, 1, &["rec"]);
        let sid = gw.initialize();
        for i in 0..20 {
            let got = seen(&call(&gw, &sid, &i.to_string(), "rec__where", "", &[]));
            let (_, _, flags) = tp_parts(s(&got, "traceparent"));
            assert_eq!(flags, "00", "{driver}: an unsampled context is passed on");
        }
        // Longer than a batch's wait (1 s): nothing was exported.
        std::thread::sleep(Duration::from_millis(1500));
        let c = rx.client().get("/count").json();
        assert_eq!(c["posts"].as_u64(), Some(0), "{driver}: {c:?}");
    }
}

#[test]
fn tracing_off_leaves_a_clients_meta_alone() {
    for driver in DRIVERS {
        let be = Py::start(&[&script("recorder.py"), "--http"]);
        let gw = Gateway::start(&config("", be.port), driver, 1, &["rec"]);
        let sid = gw.initialize();
        let meta = format!(r#"{{"traceparent":"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}}"#);
        let tp = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
        let got = seen(&call(
            &gw,
            &sid,
            "1",
            "rec__where",
            &meta,
            &[("traceparent", &tp)],
        ));
        assert_eq!(s(&got["meta"], "traceparent"), tp, "{driver}");
        assert!(
            got["traceparent"].is_null(),
            "{driver}: no header is added when off"
        );
        let m = gw.get("/metrics").text();
        assert!(!m.contains("only1mcp_trace_spans"), "{driver}");
    }
}

#[test]
fn a_dead_endpoint_costs_spans_not_service() {
    for driver in DRIVERS {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let be = Py::start(&[&script("recorder.py"), "--http"]);
        let cfg = config(
            &telemetry(&format!("http://127.0.0.1:{dead}"), 1.0),
            be.port,
        );
        let gw = Gateway::start(&cfg, driver, 2, &["rec"]);
        let sid = gw.initialize();
        for i in 0..30 {
            let a = call(&gw, &sid, &i.to_string(), "rec__where", "", &[]);
            assert!(a["result"].is_object(), "{driver}: {a:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = gw.get("/metrics").text();
            let dropped: u64 = m
                .lines()
                .find(|l| {
                    l.starts_with("only1mcp_trace_spans_dropped_total{reason=\"export_failed\"}")
                })
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0);
            // 30 calls: 30 server and 30 client spans, plus the initialize.
            if dropped >= 61 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{driver}: drops not counted: {m}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = gw.log();
        assert_eq!(
            log.matches("OTLP endpoint is not taking spans").count(),
            1,
            "{driver}: {log}"
        );
    }
}

#[test]
fn the_stdio_front_traces_too() {
    use std::io::{BufRead, BufReader, Write};
    for driver in DRIVERS {
        let rx = receiver();
        let be = Py::start(&[&script("recorder.py"), "--http"]);
        let dir = common::scratch("otel-stdio");
        let cfg = dir.join(format!("{driver}.toml"));
        let endpoint = format!("http://127.0.0.1:{}", rx.port);
        let text = format!(
            "[server]\ndriver = \"{driver}\"\n{}",
            config(&telemetry(&endpoint, 1.0), be.port)
        );
        std::fs::write(&cfg, text).unwrap();
        let mut child = std::process::Command::new(common::bin())
            .args(["stdio", "--config"])
            .arg(&cfg)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let stdio_trace = "5555aaaa5555aaaa5555aaaa5555aaaa";
        let lines = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
            format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"rec__where","arguments":{{}},"_meta":{{"traceparent":"00-{stdio_trace}-1111222233334444-01"}}}}}}"#),
        ];
        for l in &lines {
            writeln!(stdin, "{l}").unwrap();
        }
        stdin.flush().unwrap();
        // Answers in order: initialize, then the call (bounded: the gateway answers or exits).
        let mut answered = 0;
        let mut line = String::new();
        while answered < 2 && out.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("\"id\":2") {
                assert!(line.contains(stdio_trace), "{driver}: {line}");
            }
            answered += usize::from(line.contains("\"id\":"));
            line.clear();
        }
        assert_eq!(answered, 2, "{driver}");
        let all = wait_spans(&rx, "the stdio front's server span", |v| {
            v.iter()
                .any(|x| s(x, "trace_id") == stdio_trace && x["kind"].as_u64() == Some(2))
        });
        let server = all
            .iter()
            .find(|x| s(x, "trace_id") == stdio_trace && x["kind"].as_u64() == Some(2))
            .unwrap();
        assert_eq!(
            attr(server, "network.transport").as_str(),
            Some("pipe"),
            "{driver}"
        );
        assert!(attr(server, "network.protocol.name").is_null(), "{driver}");
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.wait();
    }
}

/// A backend on a unix socket: the client span says `network.transport = unix` and names the
/// socket as `server.address` (the OTel convention for a unix socket), with no port.
#[test]
fn a_unix_socket_backend_is_a_unix_transport_in_the_client_span() {
    for driver in DRIVERS {
        let rx = receiver();
        let dir = std::env::temp_dir().join(format!("o1u-otel-{}-{driver}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("d.sock");
        let demo = common::DemoHttp::start(&format!("unix:{}", sock.display()), "ud");
        let endpoint = format!("http://127.0.0.1:{}", rx.port);
        let cfg = format!(
            "{}\n[[servers]]\nid = \"ud\"\ntransport = \"http\"\nurl = \"unix:{}:/mcp\"\n",
            telemetry(&endpoint, 1.0),
            sock.display()
        );
        let gw = Gateway::start(&cfg, driver, 1, &["ud"]);
        let sid = gw.initialize();
        let trace = "77770000777700007777000077770000";
        let tp = format!("00-{trace}-1234123412341234-01");
        let a = call(&gw, &sid, "9", "ud__whoami", "", &[("traceparent", &tp)]);
        assert_eq!(a["result"]["content"][0]["text"].as_str(), Some("ud"));
        let all = wait_spans(&rx, "the unix call's spans", |v| {
            v.iter().filter(|x| s(x, "trace_id") == trace).count() >= 2
        });
        let client = all
            .iter()
            .find(|x| s(x, "trace_id") == trace && x["kind"].as_u64() == Some(3))
            .expect("client span");
        assert_eq!(
            attr(client, "network.transport").as_str(),
            Some("unix"),
            "{driver}: {client:?}"
        );
        assert_eq!(
            attr(client, "server.address").as_str(),
            sock.to_str(),
            "{driver}: {client:?}"
        );
        assert!(attr(client, "server.port").is_null(), "{driver}");
        drop(gw);
        drop(demo);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
