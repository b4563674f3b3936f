"""Test suite root: a package so test modules get unique, non-clashing names."""
