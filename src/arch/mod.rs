//! Per-architecture knowledge. One target today: x86_64.

pub mod x86_64;
