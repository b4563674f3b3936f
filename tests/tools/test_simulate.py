from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.rules.load import load_ruleset
from nudge_tools.cli import main
from nudge_tools.simulate import generate, replay
from tests.core.factories import repo_rule_files, repo_ruleset

VISITOR = "00112233aabbccdd"


def session(*events: dict) -> str:
    return json.dumps({"visitor": VISITOR, "start": 1_790_000_000, "events": list(events)})


def test_the_story_is_reached_and_shown_once() -> None:
    events = [{"t": 0, "page": "/collections/sneakers"}, {"t": 5, "dwell": 100}]
    for i, slug in enumerate(["a", "b", "c", "d"]):
        events += [{"t": 10 + i * 100, "page": f"/collections/sneakers/products/{slug}"},
                   {"t": 90 + i * 100, "dwell": 80}]
    report = replay([session(*events), "not json", ""], repo_ruleset())
    story = report.rules["sneakers-exit-intent"]
    assert report.sessions == 1 and report.bad_lines == 1 and report.pages == 5
    assert story.reached == {VISITOR} and story.impressions == 1  # per_session = 1


def test_not_enough_dwell_reaches_but_does_not_show() -> None:
    events = [{"t": i, "page": f"/collections/sneakers/products/p{i}"} for i in range(4)]
    report = replay([session(*events)], repo_ruleset())
    story = report.rules["sneakers-exit-intent"]
    assert story.reached == {VISITOR} and story.impressions == 0  # rendered, waiting for 5 minutes


def test_conflicts_lost_to_the_one_modal_per_page() -> None:
    files = repo_rule_files()
    for name, priority in (("a", 2), ("b", 1)):
        files[f"{name}.toml"] = (f'id = "{name}"\npriority = {priority}\npages = ["home"]\n'
                                 '[action]\nkind = "modal"\ntitle = "t"\n')
    report = replay([session({"t": 0, "page": "/"})], load_ruleset(files))
    assert report.rules["a"].impressions == 1 and report.rules["b"].lost == 1


def test_generator_is_deterministic_and_replayable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = list(generate(300, seed=4))
    assert lines == list(generate(300, seed=4)) and len(set(lines)) == 300
    report = replay(lines, repo_ruleset())
    assert report.sessions == 300 and report.bad_lines == 0 and report.pages > 600
    assert report.rules["sneakers-exit-intent"].impressions > 0
    path = tmp_path / "s.jsonl"
    assert main(["simulate", "--generate", "50", "--sessions", str(path)]) == 0
    assert main(["simulate", "--sessions", str(path)]) == 0
    out = capsys.readouterr().out
    assert "50 sessions" in out and "sneakers-exit-intent" in out and "conflicts lost" in out
