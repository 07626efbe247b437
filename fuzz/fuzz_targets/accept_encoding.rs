#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| only1mcp_shards::fuzzing::accept_encoding(data));
