//! The 2026-07-28 request headers that mirror the body (HTTP only).
//!
//! Owns the check that a modern POST's `Mcp-Method`, `Mcp-Name` and
//! `Mcp-Param-{X}` headers agree with its JSON-RPC body; any failure is a
//! 400 with a -32020 (HeaderMismatch) error, decided by the caller:
//!
//! * `Mcp-Method` is required on every request and must equal `method`.
//! * `Mcp-Name` is required when the body has `params.name` (`tools/call`,
//!   `prompts/get`), `params.uri` (`resources/read`) or `params.taskId`
//!   (`tasks/get`, `tasks/update`, `tasks/cancel`) and must equal it.
//! * `Mcp-Param-{X}`: for `tools/call`, each argument whose property in the
//!   tool's `inputSchema` has `"x-mcp-header": "X"` and whose value is
//!   present and not null must come with the header; strings compare as
//!   text, integers and numbers numerically (`42.0` = `42`), booleans as
//!   `true`/`false`. Unknown `Mcp-Param-*` headers are ignored.
//!
//! Header names are case-insensitive, values case-sensitive; optional
//! whitespace around a value is trimmed (RFC 9110 §5.5). A value of the
//! exact form `=?base64?<b64>?=` is decoded first (standard alphabet,
//! padding required, UTF-8); both markers must be there, else the value is
//! literal. Malformed Base64 is rejected.

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::http1::Request;

/// Checks the headers of a modern request (module docs); `tool` is the
/// definition of the called tool, if known. `Err` is the error message.
pub fn validate(
    req: &Request,
    method: &str,
    params: &Value,
    tool: Option<&Value>,
) -> Result<(), String> {
    match header(req, "mcp-method") {
        None => return Err("Header mismatch: missing Mcp-Method header".into()),
        Some(m) if m != method => {
            return Err(format!(
            "Header mismatch: Mcp-Method header value '{m}' does not match body method '{method}'"
        ))
        }
        Some(_) => {}
    }
    let name_key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(body) = name_key
        .and_then(|k| params.get(k))
        .and_then(|v| v.as_str())
    {
        let Some(raw) = header(req, "mcp-name") else {
            return Err("Header mismatch: missing Mcp-Name header".into());
        };
        let value = decode(raw)?;
        if value != body {
            return Err(format!(
                "Header mismatch: Mcp-Name header value '{value}' does not match body value '{body}'"
            ));
        }
    }
    if method == "tools/call" {
        if let Some(tool) = tool {
            check_params(req, params, tool)?;
        }
    }
    Ok(())
}

/// A header's value with optional whitespace trimmed.
fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).map(|v| v.trim_matches([' ', '\t']))
}

fn check_params(req: &Request, params: &Value, tool: &Value) -> Result<(), String> {
    let Some(props) = tool
        .get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
    else {
        return Ok(());
    };
    let args = params.get("arguments");
    for (prop, schema) in props.iter() {
        let Some(suffix) = schema.get("x-mcp-header").and_then(|x| x.as_str()) else {
            continue;
        };
        let Some(value) = args.and_then(|a| a.get(prop)).filter(|v| !v.is_null()) else {
            continue;
        };
        let name = format!("mcp-param-{suffix}");
        let Some(raw) = header(req, &name) else {
            return Err(format!(
                "Header mismatch: missing Mcp-Param-{suffix} header"
            ));
        };
        let text = decode(raw)?;
        if !matches(&text, value) {
            return Err(format!(
                "Header mismatch: Mcp-Param-{suffix} header value '{text}' does not match argument '{prop}'"
            ));
        }
    }
    Ok(())
}

/// Does header text `text` represent the JSON value `value`?
fn matches(text: &str, value: &Value) -> bool {
    if let Some(s) = value.as_str() {
        return s == text;
    }
    if let Some(b) = value.as_bool() {
        return text == if b { "true" } else { "false" };
    }
    match (value.as_f64(), text.parse::<f64>()) {
        (Some(want), Ok(got)) => want == got,
        _ => false,
    }
}

/// The value of a header: literal, or decoded from `=?base64?...?=`.
pub fn decode(raw: &str) -> Result<String, String> {
    let Some(inner) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Ok(raw.to_string());
    };
    let bytes = base64(inner)
        .ok_or_else(|| format!("Header mismatch: invalid Base64 in header value '{raw}'"))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("Header mismatch: header value '{raw}' is not UTF-8"))
}

/// Strict standard Base64 (RFC 4648 §4) with padding.
fn base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks(4);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let [_, a, b, c] = n.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn base64_sentinel_is_strict() {
        assert_eq!(decode("=?base64?SGVsbG8=?=").as_deref(), Ok("Hello"));
        assert_eq!(decode("=?base64?5pel5pys6Kqe?=").as_deref(), Ok("日本語"));
        assert!(decode("=?base64?SGVsbG8?=").is_err(), "missing padding");
        assert!(decode("=?base64?SGVs!!!bG8=?=").is_err(), "bad characters");
        assert!(decode("=?base64?S=Vs?=").is_err(), "padding inside");
        // Without both markers the value is literal.
        assert_eq!(decode("SGVsbG8=").as_deref(), Ok("SGVsbG8="));
        assert_eq!(
            decode("=?base64?SGVsbG8=").as_deref(),
            Ok("=?base64?SGVsbG8=")
        );
    }
}
