//! The `Mcp-Param-*` check (2026-07-28 over HTTP, SEP-2243): a `tools/call` of a tool whose
//! schema mirrors arguments into headers (`x-mcp-header`, `catalog/params.rs`) must carry
//! exactly the headers the body implies. Run where the tool is resolved (`route/by_name.rs`),
//! after RBAC, so a tool the caller may not see answers like a missing one whatever the
//! headers; a tool that mirrors nothing is not looked at (one `Option` test).
//!
//! For each mirrored argument, as the spec's table says and the official SDKs do:
//! - a value in the body (not `null`) needs its header, and the header must say the same
//!   (decoded from `=?base64?…?=`; numbers numerically, `42.0` is `42`);
//! - no value, or `null`, or an object or array (which has no header form): no header;
//! - the header once only, in visible ASCII, space and tab, and valid Base64 when wrapped;
//! - a member named twice on the argument's path cannot be checked: refused.
//!
//! Any failure is `HeaderMismatch` (-32020), answered with HTTP 400 and the request's id.
//! The error names the header and the argument, never a value. Headers the tool does not
//! declare are ignored (the spec: an unrecognized `Mcp-Param-*` is not the server's); toward
//! the backend the gateway sends only what the backend's own schema implies.

use crate::catalog::params::{Mirrored, ToolHeaders};
use crate::error::McpError;
use crate::http::request::SentParam;
use crate::wire::args::{self, Arg};
use crate::wire::header::{field_value_ok, header_value};
use crate::wire::jsonrpc::Envelope;

/// Checks the `Mcp-Param-*` headers `sent` against the body of a call of `tool`.
pub(crate) fn check(
    tool: &ToolHeaders,
    sent: Option<&[SentParam]>,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<(), McpError> {
    let sent = sent.unwrap_or_default();
    let arguments = env.params.clone().and_then(|p| args::arguments(body, p));
    for m in tool.mirrored.iter() {
        let mut copies = sent.iter().filter(|s| *s.name == *m.lower);
        let header = copies.next();
        if header.is_some() && copies.next().is_some() {
            return Err(mismatch(m, "appears more than once"));
        }
        let arg = args::at(body, arguments.clone(), &m.path);
        match (arg, header) {
            (Arg::Ambiguous, _) => {
                return Err(mismatch(
                    m,
                    "cannot be checked: the body names that argument twice",
                ))
            }
            (Arg::Absent | Arg::Other, None) => {}
            (Arg::Absent, Some(_)) => return Err(mismatch(m, "is sent but the argument is not")),
            (_, None) => return Err(mismatch(m, "is missing but the argument is present")),
            (arg, Some(h)) => {
                if !field_value_ok(&h.value) {
                    return Err(mismatch(m, "holds characters a header value may not"));
                }
                // Visible ASCII only, so UTF-8.
                let text = std::str::from_utf8(&h.value).unwrap_or_default();
                let Some(decoded) = header_value(text) else {
                    return Err(mismatch(m, "is not valid =?base64?…?= (UTF-8, padded)"));
                };
                if !args::matches(&arg, &decoded) {
                    return Err(mismatch(m, "does not match the argument"));
                }
            }
        }
    }
    Ok(())
}

fn mismatch(m: &Mirrored, what: &str) -> McpError {
    McpError::HeaderMismatch(format!(
        "Mcp-Param-{} {what} `{}` (x-mcp-header)",
        m.name,
        m.path.join(".")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","properties":{
        "region":{"type":"string","x-mcp-header":"Region"},
        "n":{"type":"integer","x-mcp-header":"N"},
        "opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}}}}"#;

    fn tool() -> ToolHeaders {
        crate::catalog::params::of_tool(
            format!(r#"{{"name":"t","inputSchema":{SCHEMA}}}"#).as_bytes(),
        )
        .unwrap()
        .unwrap()
    }

    fn run(args: &str, headers: &[(&str, &[u8])]) -> Result<(), String> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{args}}}}}"#
        );
        let env = Envelope::parse(body.as_bytes()).unwrap();
        let sent: Vec<SentParam> = headers
            .iter()
            .map(|(n, v)| SentParam {
                name: n.to_ascii_lowercase().into(),
                value: (*v).into(),
            })
            .collect();
        let sent = (!sent.is_empty()).then_some(&sent[..]);
        check(&tool(), sent, body.as_bytes(), &env).map_err(|e| {
            assert_eq!(e.code(), -32020);
            e.to_string()
        })
    }

    #[test]
    fn agreeing_headers_pass() {
        let ok = |a, h: &[(&str, &[u8])]| assert_eq!(run(a, h), Ok(()), "{a} {h:?}");
        ok(r#"{}"#, &[]);
        ok(r#"{"region":null,"n":null,"opts":{"dry":null}}"#, &[]);
        ok(r#"{"query":"q"}"#, &[("unknown", b"ignored")]);
        ok(
            r#"{"region":"us-west1","n":42,"opts":{"dry":true}}"#,
            &[("Region", b"us-west1"), ("n", b"42.0"), ("DRY", b"true")],
        );
        ok(
            r#"{"region":"Hello"}"#,
            &[("region", b"=?base64?SGVsbG8=?=")],
        );
        ok(r#"{"region":"SGVsbG8="}"#, &[("region", b"SGVsbG8=")]);
        ok(
            r#"{"region":"=?base64?SGVsbG8="}"#,
            &[("region", b"=?base64?SGVsbG8=")],
        );
        ok(
            r#"{"region":"日本語"}"#,
            &[("region", b"=?base64?5pel5pys6Kqe?=")],
        );
        ok(r#"{"region":""}"#, &[("region", b"")]);
        // An object or array has no header form: none is expected.
        ok(r#"{"region":["a"],"opts":[1]}"#, &[]);
    }

    #[test]
    fn missing_extra_disagreeing_and_badly_encoded_headers_are_refused() {
        let no = |a, h: &[(&str, &[u8])], why: &str| {
            let e = run(a, h).expect_err(a);
            assert!(e.contains(why), "{a} {h:?}: {e}");
            assert!(e.starts_with("header mismatch: Mcp-Param-"), "{e}");
        };
        no(r#"{"region":"x"}"#, &[], "Region is missing");
        no(r#"{"opts":{"dry":false}}"#, &[], "Dry is missing");
        no(
            r#"{}"#,
            &[("region", b"x")],
            "Region is sent but the argument is not",
        );
        no(r#"{"region":null}"#, &[("region", b"x")], "is sent but");
        no(r#"{"region":["x"]}"#, &[("region", b"x")], "does not match");
        no(r#"{"region":"a"}"#, &[("region", b"b")], "does not match");
        no(r#"{"region":"a"}"#, &[("region", b"A")], "does not match");
        no(r#"{"n":42}"#, &[("n", b"43")], "does not match");
        no(
            r#"{"opts":{"dry":true}}"#,
            &[("dry", b"1")],
            "does not match",
        );
        no(
            r#"{"region":"Hello"}"#,
            &[("region", b"=?base64?SGVsbG8?=")],
            "not valid",
        );
        no(
            r#"{"region":"Hello"}"#,
            &[("region", b"=?base64?SGVs!!!bG8=?=")],
            "not valid",
        );
        no(
            r#"{"region":"caf\u00e9"}"#,
            &[("region", "café".as_bytes())],
            "characters",
        );
        no(
            r#"{"region":"a"}"#,
            &[("region", b"a"), ("Region", b"a")],
            "more than once",
        );
        no(
            r#"{"region":"a","region":"a"}"#,
            &[("region", b"a")],
            "twice",
        );
    }

    #[test]
    fn errors_name_the_header_and_argument_never_the_value() {
        let e = run(r#"{"opts":{"dry":true}}"#, &[("dry", b"secret-ish")]).unwrap_err();
        assert!(
            e.contains("Mcp-Param-Dry") && e.contains("`opts.dry`"),
            "{e}"
        );
        assert!(!e.contains("secret-ish"), "{e}");
    }
}
