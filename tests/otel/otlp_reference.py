"""Prints src/telemetry/otlp_reference.hex: the batch of the unit test in src/telemetry/otlp.rs,
serialized by the reference implementation (the opentelemetry-proto package, pinned in
tests/requirements.txt). Run: target/test-env/venv/bin/python tests/otel/otlp_reference.py > src/telemetry/otlp_reference.hex
"""
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2 as t
from opentelemetry.proto.common.v1 import common_pb2 as c
req = ExportTraceServiceRequest()
rs = req.resource_spans.add()
rs.resource.attributes.add(key="service.name", value=c.AnyValue(string_value="gw-test"))
ss = rs.scope_spans.add()
ss.scope.name = "only1mcp-uring"; ss.scope.version = "0.1.0"
s = ss.spans.add()
s.trace_id = bytes([0x4b]*16); s.span_id = bytes([1]*8); s.trace_state = "a=b"; s.parent_span_id = bytes([2]*8)
s.name = "tools/call demo__echo"; s.kind = t.Span.SPAN_KIND_SERVER
s.start_time_unix_nano = 1_700_000_000_000_000_000; s.end_time_unix_nano = 1_700_000_000_001_000_000
s.attributes.add(key="mcp.method.name", value=c.AnyValue(string_value="tools/call"))
s.attributes.add(key="server.port", value=c.AnyValue(int_value=9001))
s.attributes.add(key="neg", value=c.AnyValue(int_value=-5))
l = s.links.add(); l.trace_id = bytes([0x11]*16); l.span_id = bytes([0x22]*8)
s.status.message = "bad"; s.status.code = t.Status.STATUS_CODE_ERROR
s = ss.spans.add()
s.trace_id = bytes([0x4b]*16); s.span_id = bytes([3]*8); s.parent_span_id = bytes([1]*8)
s.name = "tools/call echo"; s.kind = t.Span.SPAN_KIND_CLIENT
s.start_time_unix_nano = 1_700_000_000_000_100_000; s.end_time_unix_nano = 1_700_000_000_000_900_000
s.attributes.add(key="error.type", value=c.AnyValue(string_value="tool_error"))
s.status.code = t.Status.STATUS_CODE_ERROR
h = req.SerializeToString().hex()
print("\n".join(h[i:i+96] for i in range(0, len(h), 96)))
