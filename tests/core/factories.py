"""Small factories shared by the core tests (the visits come from tools/nudge_tools/visits.py,
which the benchmarks use too)."""

from __future__ import annotations

from nudge.app import EdgeApp
from nudge.rules import RuleSet, load_ruleset
from nudge_tools.visits import NOW, ROOT, heavy_history, repo_rule_files, session, typical_visit

__all__ = ["NOW", "ROOT", "SECRET", "heavy_history", "make_app", "repo_rule_files", "repo_ruleset", "session",
           "typical_visit"]

SECRET = [b"test-secret"]


def repo_ruleset() -> RuleSet:
    return load_ruleset(repo_rule_files())


def make_app(files: dict[str, str] | None = None) -> EdgeApp:
    return EdgeApp(load_ruleset(files or repo_rule_files()), SECRET, "/* client */")
