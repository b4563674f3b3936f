"""Tests for the demo shop (the origin nudge proxies)."""
