"""Small factories shared by the core tests."""

from __future__ import annotations

from pathlib import Path

from nudge.app import EdgeApp
from nudge.rules import RuleSet, load_ruleset
from nudge.session import Session

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_790_000_000  # a fixed clock; everything time-based takes `now` as an argument
SECRET = [b"test-secret"]


def repo_rule_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "rules").glob("*.toml"))}


def repo_ruleset() -> RuleSet:
    return load_ruleset(repo_rule_files())


def make_app(files: dict[str, str] | None = None) -> EdgeApp:
    return EdgeApp(load_ruleset(files or repo_rule_files()), SECRET, "/* client */")


def session(now: int = NOW) -> Session:
    return Session.fresh(now, visitor=b"visitor1")
