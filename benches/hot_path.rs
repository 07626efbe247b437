//! Benchmarks of the hot path: envelope parse + route + splice (filled in below).
fn main() {}
