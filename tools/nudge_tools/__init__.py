"""Offline tooling for nudge's tests and benchmarks (never deployed: it lives outside src/)."""
