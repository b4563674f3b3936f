"""What the `nudge` commands read: the session cookie a developer pastes, the Worker's secrets (as
`wrangler dev` finds them) and the rules directory, with `UsageError` for input they cannot use.
"""

from __future__ import annotations

import os
from pathlib import Path

from nudge.rules.load import RuleError
from nudge.signing import parse_secrets
from nudge.visitor.session import COOKIE_NAME

SECRET_VAR = "NUDGE_SECRET"
DEV_VARS = ".dev.vars"
# tools/nudge_tools/inputs.py -> the repo root, for running from anywhere inside a checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_RULES = REPO_ROOT / "rules"


class UsageError(Exception):
    """Input the command cannot work with (no secret, no cookie): exit 2, message on stderr."""


def cookie_value(text: str) -> str:
    """The `nudge` cookie value from a bare value, a `nudge=...` pair or a whole Cookie header
    (so whatever is copied from the browser's dev tools works)."""
    text = text.strip()
    if text[:7].lower() == "cookie:":
        text = text[7:].strip()
    if "=" not in text:  # signed tokens are unpadded base64url: a bare value never has '='
        if not text:
            raise UsageError("no cookie given: pass the `nudge` cookie value, or pipe it on stdin")
        return _unquote(text)
    for chunk in text.split(";"):
        name, _, value = chunk.partition("=")
        if name.strip() == COOKIE_NAME:
            return _unquote(value.strip())
    raise UsageError(f"no `{COOKIE_NAME}` cookie in the input")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file such as wrangler's .dev.vars (quotes optional, # comments)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep and key.strip():
            out[key.strip()] = _unquote(value.strip())
    return out


def find_secrets(explicit: str | None) -> list[bytes]:
    """The Worker's secrets, looked up like a developer would: --secret, then $NUDGE_SECRET,
    then ./.dev.vars (what `wrangler dev` uses). Several (rotation) are accepted, newest first."""
    value = explicit or os.environ.get(SECRET_VAR)
    if not value and Path(DEV_VARS).is_file():
        value = read_dotenv(Path(DEV_VARS)).get(SECRET_VAR)
    secrets = parse_secrets(value)
    if not secrets:
        raise UsageError(f"no secret: pass --secret, set {SECRET_VAR}, or run from a directory whose "
                         f"{DEV_VARS} has a {SECRET_VAR}=... line")
    return secrets


def default_rules_dir() -> Path:
    """./rules when run from the repo root, else the rules/ of the checkout this module is in."""
    here = Path("rules")
    return here if here.is_dir() else REPO_RULES


def read_rule_files(directory: Path) -> dict[str, str]:
    """{file name: TOML text} for every rules/*.toml, as scripts/build_bundle.py bundles them."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    files: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            files[path.name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RuleError(path.name, "-", f"not UTF-8: {exc}") from exc
    return files
