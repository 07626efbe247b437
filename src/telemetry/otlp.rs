//! OTLP/protobuf encoding of a batch of spans, written by hand.
//!
//! An `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`) with one
//! `ResourceSpans` (the `service.name` resource) and one `ScopeSpans` (scope
//! `only1mcp-uring`). Only the fields the gateway sets are written, in field-number order,
//! and default values are left out, as protobuf's own serializers do; so a batch encodes to
//! the same bytes as the reference implementation (the unit test compares with bytes the
//! Python `opentelemetry-proto` package produced). Hand-written because the messages are
//! few and fixed: the `opentelemetry-proto` crate would bring prost and, by default, tonic
//! and the OpenTelemetry API crates for six messages (`docs/decisions/0009-otlp-exporter.md`).

use only1mcp_shards::trace::{SpanRecord, Value};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes(out, field, s.as_bytes());
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, VARINT);
        varint(out, v);
    }
}

/// A nested message: `fill` writes its fields, then it goes in as a length-delimited field.
fn message(out: &mut Vec<u8>, field: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    fill(&mut inner);
    bytes(out, field, &inner);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string_value = 1; int_value = 3 }`,
/// written straight into `out` (lengths computed, no buffer per attribute).
fn key_value(out: &mut Vec<u8>, field: u32, k: &str, v: &Value) {
    let any_len = match v {
        Value::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
        Value::Int(i) => 1 + varint_len(*i as u64),
    };
    let key_len = if k.is_empty() {
        0
    } else {
        1 + varint_len(k.len() as u64) + k.len()
    };
    let kv_len = key_len + 1 + varint_len(any_len as u64) + any_len;
    key(out, field, LEN);
    varint(out, kv_len as u64);
    string(out, 1, k);
    key(out, 2, LEN);
    varint(out, any_len as u64);
    match v {
        Value::Str(s) => bytes(out, 1, s.as_bytes()),
        Value::Int(i) => {
            key(out, 3, VARINT);
            varint(out, *i as u64);
        }
    }
}

fn span(out: &mut Vec<u8>, s: &SpanRecord) {
    bytes(out, 1, &s.trace_id);
    bytes(out, 2, &s.span_id);
    if let Some(ts) = &s.trace_state {
        string(out, 3, ts);
    }
    if let Some(p) = &s.parent {
        bytes(out, 4, p);
    }
    string(out, 5, &s.name);
    uint(out, 6, s.kind as u64);
    fixed64(out, 7, s.start_ns);
    fixed64(out, 8, s.end_ns);
    for (k, v) in &s.attrs {
        key_value(out, 9, k, v);
    }
    if let Some(l) = &s.link {
        // Link { trace_id = 1; span_id = 2 }
        message(out, 13, |m| {
            bytes(m, 1, &l.trace_id);
            bytes(m, 2, &l.span_id);
        });
    }
    if let Some(msg) = &s.error {
        // Status { message = 2; code = 3 (STATUS_CODE_ERROR = 2) }
        message(out, 15, |st| {
            string(st, 2, msg);
            uint(st, 3, 2);
        });
    }
}

/// Encodes `spans` as one `ExportTraceServiceRequest` from service `service` into `out`.
/// Each span is written once into a scratch buffer reused for the whole batch.
pub fn encode(service: &str, spans: &[SpanRecord], out: &mut Vec<u8>) {
    let mut scope_spans = Vec::with_capacity(64 + spans.len() * 512);
    message(&mut scope_spans, 1, |scope| {
        string(scope, 1, "only1mcp-uring");
        string(scope, 2, env!("CARGO_PKG_VERSION"));
    });
    let mut scratch = Vec::with_capacity(512);
    for s in spans {
        scratch.clear();
        span(&mut scratch, s);
        bytes(&mut scope_spans, 2, &scratch);
    }
    let mut resource_spans = Vec::with_capacity(scope_spans.len() + 64);
    message(&mut resource_spans, 1, |res| {
        key_value(res, 1, "service.name", &Value::Str(service.to_string()));
    });
    bytes(&mut resource_spans, 2, &scope_spans);
    out.clear();
    bytes(out, 1, &resource_spans);
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_shards::trace::{SpanContext, SpanKind};

    fn sample() -> Vec<SpanRecord> {
        vec![
            SpanRecord {
                trace_id: [0x4b; 16],
                span_id: [0x01; 8],
                parent: Some([0x02; 8]),
                trace_state: Some("a=b".into()),
                name: "tools/call demo__echo".into(),
                kind: SpanKind::Server,
                start_ns: 1_700_000_000_000_000_000,
                end_ns: 1_700_000_000_001_000_000,
                attrs: vec![
                    ("mcp.method.name", Value::Str("tools/call".into())),
                    ("server.port", Value::Int(9001)),
                    ("neg", Value::Int(-5)),
                ],
                error: Some("bad".into()),
                link: Some(SpanContext {
                    trace_id: [0x11; 16],
                    span_id: [0x22; 8],
                    flags: 1,
                }),
            },
            SpanRecord {
                trace_id: [0x4b; 16],
                span_id: [0x03; 8],
                parent: Some([0x01; 8]),
                trace_state: None,
                name: "tools/call echo".into(),
                kind: SpanKind::Client,
                start_ns: 1_700_000_000_000_100_000,
                end_ns: 1_700_000_000_000_900_000,
                attrs: vec![("error.type", Value::Str("tool_error".into()))],
                error: Some(String::new()),
                link: None,
            },
        ]
    }

    /// The same batch serialized by the Python `opentelemetry-proto` 1.45.2 package
    /// (`ExportTraceServiceRequest.SerializeToString()`, fields set as in `sample()`, the
    /// scope version being this crate's version, 0.1.0), by `tests/otel/otlp_reference.py`.
    const REFERENCE_HEX: &str = include_str!("otlp_reference.hex");

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn encodes_the_bytes_the_reference_implementation_does() {
        assert_eq!(
            env!("CARGO_PKG_VERSION"),
            "0.1.0",
            "regenerate the reference"
        );
        let mut out = Vec::new();
        encode("gw-test", &sample(), &mut out);
        assert_eq!(out, unhex(REFERENCE_HEX));
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        v.clear();
        varint(&mut v, (-1i64) as u64);
        assert_eq!(v.len(), 10);
        assert_eq!(v[9], 0x01);
        for n in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            v.clear();
            varint(&mut v, n);
            assert_eq!(varint_len(n), v.len(), "{n}");
        }
    }
}
