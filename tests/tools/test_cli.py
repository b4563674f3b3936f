from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nudge.kv_keys import POINTER_KEY, blob_key
from nudge.rules.blob import compile_blob
from nudge.signing import Signer
from nudge.visitor.pages import Page
from nudge.visitor.session import SessionCodec
from nudge.visitor.tracking import credit_dwell, record_page_view
from nudge_tools import cli
from nudge_tools.cli import main
from nudge_tools.inputs import read_rule_files
from tests.core.factories import NOW, ROOT, session

SECRET = "cli-test-secret"


def cookie(secret: str = SECRET) -> str:
    """A real session cookie: a sneaker category page, then a product page read for 45 s."""
    s = session()
    record_page_view(s, Page("category", "sneakers"), NOW, "utm_source=news")
    pv = record_page_view(s, Page("product", "sneakers", "runner-1"), NOW + 30)
    credit_dwell(s, pv, 45, NOW + 75)
    return SessionCodec(Signer([secret.encode()], "session")).encode(s)


@pytest.fixture(autouse=True)
def no_ambient_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's $NUDGE_SECRET nor the repo's .dev.vars may leak into a test."""
    monkeypatch.delenv("NUDGE_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)


def decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["session", "decode", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def test_decode_prints_session_and_attributes(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = decode(capsys, cookie(), "--secret", SECRET, "--now", str(NOW + 100),
                             "--path", "/collections/sneakers/products/runner-1?ref=x")
    assert code == 0 and err == ""
    assert data["valid"] is True
    assert data["visitor"] == b"visitor1".hex()
    raw = data["session"]
    assert raw["visitor"] == b"visitor1".hex() and raw["pages"] == 2
    assert raw["categories"]["sneakers"]["dwell"] == 45
    assert "is_new" not in raw and "ended" not in raw
    attributes = data["attributes"]
    assert attributes["category"]["sneakers"] == {
        "views": 1, "dwell_seconds": 45, "products_viewed": 1, "last_seen_seconds_ago": 70, "affinity": 0.0,
    }
    assert attributes["page"] == {"type": "product", "path": "/collections/sneakers/products/runner-1",
                                  "category": "sneakers", "product": "runner-1"}
    assert attributes["session"]["duration_seconds"] == 100
    assert attributes["utm"]["source"] == "news"


def test_decode_defaults_to_the_home_page(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = decode(capsys, cookie(), "--secret", SECRET, "--now", str(NOW + 100))
    assert code == 0
    assert data["attributes"]["page"]["type"] == "home"


@pytest.mark.parametrize("form", ["{}", "nudge={}", "a=1; nudge={}; b=2", "Cookie: a=1; nudge={}", '  "{}"\n'])
def test_decode_accepts_value_pair_or_header(capsys: pytest.CaptureFixture[str], form: str) -> None:
    code, data, _ = decode(capsys, form.format(cookie()), "--secret", SECRET, "--now", str(NOW))
    assert code == 0 and data["valid"] is True


@pytest.mark.parametrize("args", [[], ["-"]])
def test_decode_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                            args: list[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"a=1; nudge={cookie()}\n"))
    code, data, _ = decode(capsys, *args, "--secret", SECRET, "--now", str(NOW))
    assert code == 0 and data["visitor"] == b"visitor1".hex()


def test_tampered_cookie_is_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    value = cookie()
    body, _, mac = value.rpartition(".")
    tampered = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    code, data, _ = decode(capsys, tampered, "--secret", SECRET)
    assert code == 1
    assert data["valid"] is False
    assert "signature does not match" in data["reason"] and "fresh session" in data["reason"]


def test_cookie_signed_with_another_secret_is_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = decode(capsys, cookie("other-secret"), "--secret", SECRET)
    assert code == 1 and data == {"valid": False, "reason": data["reason"]}


def test_rotated_secrets_are_all_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = decode(capsys, cookie("old-secret"), "--secret", "new-secret,old-secret", "--now", str(NOW))
    assert code == 0 and data["valid"] is True


def test_missing_secret_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = decode(capsys, cookie())
    assert code == 2 and data == {}
    assert "NUDGE_SECRET" in err


def test_missing_cookie_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a=1; b=2"))
    code, _, err = decode(capsys, "--secret", SECRET)
    assert code == 2 and "no `nudge` cookie" in err


def test_secret_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_SECRET", SECRET)
    code, data, _ = decode(capsys, cookie(), "--now", str(NOW))
    assert code == 0 and data["valid"] is True


def test_secret_from_dev_vars(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / ".dev.vars").write_text(f'# wrangler dev vars\nOTHER=1\nNUDGE_SECRET="{SECRET}"\n')
    code, data, _ = decode(capsys, cookie(), "--now", str(NOW))
    assert code == 0 and data["valid"] is True


def test_idle_visit_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = decode(capsys, cookie(), "--secret", SECRET, "--now", str(NOW + 3 * 3600))
    assert code == 0 and "new visit" in err


def test_rules_check_on_the_repo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", "--dir", str(ROOT / "rules")]) == 0
    out, err = capsys.readouterr()
    files = [p for p in (ROOT / "rules").glob("*.toml") if p.name not in ("pages.toml", "site.toml", "catalog.toml")]
    f = sum('kind = "webhook"' in p.read_text() for p in files)
    assert out.strip() == f"ok: {len(files) - f} rules and {f} follow-ups" and err == ""


def test_rules_check_defaults_to_the_repo_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check"]) == 0  # cwd is an empty tmp dir
    assert capsys.readouterr().out.startswith("ok: ")


def test_rules_check_names_file_and_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pages.toml").write_text((ROOT / "rules" / "pages.toml").read_text())
    good = (ROOT / "rules" / "sneakers-exit-intent.toml").read_text()
    (rules / "broken.toml").write_text(good.replace('id = "sneakers-exit-intent"', 'id = "broken"')
                                       .replace("percent = 10", "percent = 95"))
    assert main(["rules", "check", "--dir", str(rules)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    broken = (rules / "broken.toml").read_text().splitlines()
    line = next(i for i, text in enumerate(broken, 1) if text.startswith("percent = 95"))
    assert err.strip() == f"{rules / 'broken.toml'}:{line}: offer.percent: expected 1..90"


def test_rules_check_rejects_invalid_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pages.toml").write_text('[[page]]\ntype = "home"\npattern = "/"\n')
    (tmp_path / "bad.toml").write_text("id = \n")
    assert main(["rules", "check", "--dir", str(tmp_path)]) == 1
    assert "bad.toml:1: -: not valid TOML" in capsys.readouterr().err


def test_help_explains_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["session", "--help"], ["rules", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "inspect a shopper's session cookie" in out
    assert "verify a nudge cookie" in out
    assert "validate every rule file" in out


class _Run:
    """Stands in for subprocess.run in nudge.cli: records each command, answers `returncode`."""

    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.returncode = returncode

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        blob = Path(cmd[cmd.index("--path") + 1]).read_bytes()  # the file exists while the command runs
        assert blob
        self.calls.append((cmd, kwargs["env"]))
        return subprocess.CompletedProcess(cmd, self.returncode, "", "boom" if self.returncode else "")


def test_rules_publish_puts_the_blob_then_the_pointer_with_wrangler(capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    run = _Run()
    monkeypatch.setattr(cli.subprocess, "run", run)
    version, _ = compile_blob(read_rule_files(ROOT / "rules"), 0)
    assert main(["rules", "publish", "--dir", str(ROOT / "rules"), "--persist-to", "state"]) == 0
    wrangler = str(ROOT / "node_modules" / ".bin" / "wrangler")
    local = ["--local", "--persist-to", str(tmp_path / "state")]  # relative to where nudge runs
    assert [cmd[:-2] for cmd, _ in run.calls] == [
        [wrangler, "kv", "key", "put", *local, "--binding", "NUDGE_KV", blob_key(version)],
        [wrangler, "kv", "key", "put", *local, "--binding", "NUDGE_KV", POINTER_KEY],
    ]
    env = run.calls[0][1]
    assert env["PATH"].split(os.pathsep)[0] == str(ROOT / "node_modules" / ".bin")  # its Node 22, not the system's
    assert env["WRANGLER_SEND_METRICS"] == "false"
    assert f"published rules {version} to local KV in state" in capsys.readouterr().out

    run.calls.clear()
    assert main(["rules", "publish", "--dir", str(ROOT / "rules"), "--remote"]) == 0
    assert [cmd[4:-2] for cmd, _ in run.calls] == [["--remote", "--binding", "NUDGE_KV", blob_key(version)],
                                                  ["--remote", "--binding", "NUDGE_KV", POINTER_KEY]]


def test_rules_publish_stops_at_the_first_failed_put(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run = _Run(returncode=1)
    monkeypatch.setattr(cli.subprocess, "run", run)
    assert main(["rules", "publish", "--dir", str(ROOT / "rules")]) == 1
    assert len(run.calls) == 1  # never the pointer to a blob that is not there
    assert "publishing failed" in capsys.readouterr().err
