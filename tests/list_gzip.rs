//! gzip list pages on the wire, on both drivers: a 5,000-tool catalogue's `tools/list` pages
//! are sent gzip to a client whose `Accept-Encoding` takes it, and decode (with flate2 and
//! with Python's zlib, two independent inflaters) to exactly the bytes a client that did not
//! ask gets; `q=0`, other codings and malformed headers get those identity bytes; both eras;
//! the compressed copy is built once per page and catalog version (the gateway's
//! `list_gzip_builds` counter) and again after a reload changed the catalogue.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, parse_response, Gateway, Resp, DRIVERS};
use sonic_rs::JsonContainerTrait;

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// One backend of 5,000 tools (the demo's 11 and 4,989 more), listed 2,000 to a page.
fn config(extra: &str) -> String {
    format!(
        "[proxy]\nlist_page_size = 2000\n\n{}{extra}",
        demo_stdio(
            "big",
            "env = { DEMO_EXTRA_TOOLS = \"4989\", DEMO_PAGE_SIZE = \"1000\" }"
        )
    )
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a valid gzip member (CRC and length checked)");
    out
}

/// The same with Python's gzip module and zlib, a second, independent decoder.
fn gunzip_python(body: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            // gzip.decompress, and zlib with the gzip wrapper (wbits 31), must agree.
            "import gzip,sys,zlib; b=sys.stdin.buffer.read(); d=gzip.decompress(b); assert zlib.decompress(b, 31) == d; sys.stdout.buffer.write(d)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python's gzip refused the body");
    out.stdout
}

fn list(
    gw: &Gateway,
    sid: Option<&str>,
    id: &str,
    cursor: Option<&str>,
    encoding: Option<&str>,
) -> Resp {
    let cursor = cursor
        .map(|c| format!(r#""cursor":"{c}""#))
        .unwrap_or_default();
    let mut h: Vec<(&str, &str)> = Vec::new();
    let body = match sid {
        Some(sid) => {
            h.push(("mcp-session-id", sid));
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{{cursor}}}}}"#)
        }
        None => {
            h.push(("mcp-protocol-version", "2026-07-28"));
            h.push(("mcp-method", "tools/list"));
            let sep = if cursor.is_empty() { "" } else { "," };
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{{cursor}{sep}{META}}}}}"#
            )
        }
    };
    if let Some(e) = encoding {
        h.push(("accept-encoding", e));
    }
    let r = gw.post(&h, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    metric_as(gw, name, &[])
}

fn metric_as(gw: &Gateway, name: &str, auth: &[(&str, &str)]) -> u64 {
    let text = gw.request("GET", "/metrics", auth, b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn wait_metric(gw: &Gateway, name: &str, want: u64) {
    wait_metric_as(gw, name, want, &[]);
}

fn wait_metric_as(gw: &Gateway, name: &str, want: u64, auth: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric_as(gw, name, auth) != want {
        assert!(
            Instant::now() < deadline,
            "{name} = {} (want {want})",
            metric_as(gw, name, auth)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts `r` is the gzip form of `identity` (same status, headers that say so, exact bytes).
fn assert_gzip_of(r: &Resp, identity: &Resp, what: &str) {
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{what}");
    assert_eq!(r.header("vary"), Some("accept-encoding"), "{what}");
    assert!(
        r.body.len() * 4 < identity.body.len(),
        "{what}: {} bytes gzip for {} identity",
        r.body.len(),
        identity.body.len()
    );
    same(&gunzip(&r.body), &identity.body, &format!("{what}: flate2"));
    same(
        &gunzip_python(&r.body),
        &identity.body,
        &format!("{what}: python"),
    );
}

fn assert_identity(r: &Resp, identity: &Resp, what: &str) {
    assert_eq!(r.header("content-encoding"), None, "{what}");
    same(&r.body, &identity.body, what);
}

/// Byte equality, reported by length and first difference (the bodies are ~1 MB).
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        let near = at.unwrap_or(got.len().min(want.len()));
        let show = |b: &[u8]| {
            String::from_utf8_lossy(&b[near.saturating_sub(40)..(near + 40).min(b.len())])
                .into_owned()
        };
        panic!(
            "{what}: {} bytes, want {} (first difference at {at:?}: {:?} vs {:?})",
            got.len(),
            want.len(),
            show(got),
            show(want)
        );
    }
}

#[test]
fn large_list_pages_go_gzip_to_clients_that_accept_it_and_identity_to_others() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["big"]);
        let sid = gw.initialize();
        let mut names = 0;
        for cursor in [None, Some("o1m-2000"), Some("o1m-4000")] {
            let what = format!("{driver} page {cursor:?}");
            let identity = list(&gw, Some(&sid), "7", cursor, None);
            assert_eq!(identity.header("content-encoding"), None, "{what}");
            assert_eq!(identity.header("vary"), Some("accept-encoding"), "{what}");
            names += identity.json()["result"]["tools"].as_array().unwrap().len();
            for enc in ["gzip", "br;q=1, GZIP;q=0.5", "*", "deflate, x-gzip"] {
                let r = list(&gw, Some(&sid), "7", cursor, Some(enc));
                assert_gzip_of(&r, &identity, &format!("{what} {enc:?}"));
            }
            for enc in [
                "gzip;q=0",
                "identity",
                "br, zstd",
                "*;q=0",
                "gzip;q=2",
                "gzip,;q=1",
            ] {
                let r = list(&gw, Some(&sid), "7", cursor, Some(enc));
                assert_identity(&r, &identity, &format!("{what} {enc:?}"));
            }
            // Another id: the head is the request's own, the compressed middle shared.
            let other = list(&gw, Some(&sid), r#""x-9""#, cursor, None);
            let r = list(&gw, Some(&sid), r#""x-9""#, cursor, Some("gzip"));
            assert_gzip_of(&r, &other, &format!("{what} string id"));
        }
        assert_eq!(names, 5000, "{driver}: the whole catalogue");
        // The stateless era: its own rendering, its own tail (ttlMs, cacheScope).
        let identity = list(&gw, None, "3", None, None);
        assert!(identity.text().contains(r#""cacheScope":"public""#));
        let r = list(&gw, None, "3", None, Some("gzip"));
        assert_gzip_of(&r, &identity, &format!("{driver} 2026-07-28"));
        let r = list(&gw, None, "3", None, Some("gzip;q=0"));
        assert_identity(&r, &identity, &format!("{driver} 2026-07-28 q=0"));
        // Small answers are never compressed, nor marked.
        let init = gw.post(
            &[("mcp-session-id", &sid), ("accept-encoding", "gzip")],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        );
        assert_eq!(init.header("content-encoding"), None);
        assert_eq!(init.header("vary"), None);
        // Three 2025 pages and one 2026 page were compressed, once each, for 3 × (4 + 1) + 1
        // gzip answers.
        wait_metric(&gw, "only1mcp_list_gzip_answers_total", 16);
        assert_eq!(
            metric(&gw, "only1mcp_list_gzip_builds_total"),
            4,
            "{driver}"
        );
    }
}

#[test]
fn gzip_answers_are_framed_exactly_on_a_kept_alive_connection() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["big"]);
        let sid = gw.initialize();
        let identity = list(&gw, Some(&sid), "1", None, None);
        // Two requests on one connection, the first gzip: its Content-Length must end it
        // exactly where the second answer begins.
        let req = |id: u32, enc: &str, close: bool| {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            format!(
                "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\n{enc}{}content-length: {}\r\n\r\n{body}",
                gw.addr,
                if close { "connection: close\r\n" } else { "" },
                body.len()
            )
        };
        let mut s = TcpStream::connect(&gw.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let two = req(1, "accept-encoding: gzip\r\n", false) + &req(1, "", true);
        s.write_all(two.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let first = parse_response(&raw);
        assert_gzip_of(&first, &identity, driver);
        let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let second = parse_response(&raw[head_len + first.body.len()..]);
        assert_identity(&second, &identity, driver);
        let second_head = raw[head_len + first.body.len()..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        assert_eq!(
            raw.len(),
            head_len + first.body.len() + second_head + second.body.len(),
            "{driver}: nothing before, between or after the two answers"
        );
    }
}

#[test]
fn the_compressed_copy_is_rebuilt_after_the_catalogue_changes() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["big"]);
        let sid = gw.initialize();
        let last = Some("o1m-4000");
        for _ in 0..3 {
            let identity = list(&gw, Some(&sid), "5", last, None);
            assert_gzip_of(
                &list(&gw, Some(&sid), "5", last, Some("gzip")),
                &identity,
                driver,
            );
        }
        wait_metric(&gw, "only1mcp_list_gzip_answers_total", 3);
        assert_eq!(
            metric(&gw, "only1mcp_list_gzip_builds_total"),
            1,
            "{driver}"
        );
        // A reload adds a server: the last page grows by its 11 tools.
        let log_before = gw.log().matches("config reloaded").count();
        std::fs::write(&gw.cfg, config(&demo_stdio("more", ""))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while gw.log().matches("config reloaded").count() == log_before {
            assert!(Instant::now() < deadline, "no reload\n{}", gw.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        gw.wait_ready(&["more"], Duration::from_secs(20));
        let deadline = Instant::now() + Duration::from_secs(15);
        let identity = loop {
            let r = list(&gw, Some(&sid), "5", last, None);
            if r.json()["result"]["tools"].as_array().unwrap().len() == 1011 {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "{driver}: the new tools never listed"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        for _ in 0..3 {
            let r = list(&gw, Some(&sid), "5", last, Some("gzip"));
            assert_gzip_of(&r, &identity, &format!("{driver} after the reload"));
        }
        wait_metric(&gw, "only1mcp_list_gzip_answers_total", 6);
        assert_eq!(
            metric(&gw, "only1mcp_list_gzip_builds_total"),
            2,
            "{driver}: one new copy for the new catalogue, not one per answer"
        );
    }
}

#[test]
fn compress_lists_false_turns_it_off() {
    for driver in DRIVERS {
        let cfg = format!("[server]\ncompress_lists = false\n\n{}", config(""));
        let gw = Gateway::start(&cfg, driver, 1, &["big"]);
        let sid = gw.initialize();
        let identity = list(&gw, Some(&sid), "2", None, None);
        let r = list(&gw, Some(&sid), "2", None, Some("gzip"));
        assert_identity(&r, &identity, driver);
        assert_eq!(
            r.header("vary"),
            None,
            "{driver}: nothing depends on the header"
        );
        assert_eq!(metric(&gw, "only1mcp_list_gzip_builds_total"), 0);
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn each_role_view_gets_its_own_compressed_copy() {
    let (all, few) = ("all-key-0123456789", "few-key-0123456789");
    let cfg = format!(
        "[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"all\"\nsha256 = \"{}\"\nroles = [\"all\"]\n[[auth.api_keys]]\nname = \"few\"\nsha256 = \"{}\"\nroles = [\"few\"]\n[[auth.roles]]\nname = \"all\"\n[[auth.roles]]\nname = \"few\"\nrename = {{ \"big__echo\" = \"big__ECHO\" }}\n\n{}",
        sha256_hex(all),
        sha256_hex(few),
        config("")
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["big"]);
        let ask = |key: &str, enc: Option<&str>, cursor: Option<&str>| {
            let bearer = format!("Bearer {key}");
            let mut h = vec![
                ("authorization", bearer.as_str()),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ];
            h.extend(enc.map(|e| ("accept-encoding", e)));
            let cursor = cursor
                .map(|c| format!(r#""cursor":"{c}","#))
                .unwrap_or_default();
            let r = gw.post(
                &h,
                &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{cursor}{META}}}}}"#),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            r
        };
        let (all_id, few_id) = (ask(all, None, None), ask(few, None, None));
        // Two views of the same length (a rename to as many bytes): only the view in the
        // copy's key tells them apart.
        assert_ne!(all_id.body, few_id.body, "{driver}: two views");
        assert_eq!(all_id.body.len(), few_id.body.len(), "{driver}");
        for _ in 0..3 {
            assert_gzip_of(&ask(all, Some("gzip"), None), &all_id, driver);
            assert_gzip_of(&ask(few, Some("gzip"), None), &few_id, driver);
        }
        // A cursor the gateway never hands out (not on a page boundary) gets no copy.
        let odd = ask(few, None, Some("o1m-7"));
        let r = ask(few, Some("gzip"), Some("o1m-7"));
        assert_identity(&r, &odd, &format!("{driver}: forged offset"));
        assert_eq!(r.header("vary"), None);
        let bearer = format!("Bearer {all}");
        let auth = [("authorization", bearer.as_str())];
        wait_metric_as(&gw, "only1mcp_list_gzip_answers_total", 6, &auth);
        assert_eq!(
            metric_as(&gw, "only1mcp_list_gzip_builds_total", &auth),
            2,
            "{driver}"
        );
    }
}
