"""`nudge`: a developer's command line for looking at what the Worker sees.

`nudge session decode` opens a shopper's signed session cookie (pasted from the browser) and shows
the visitor attributes rule conditions would be evaluated against; `nudge rules check` validates
rules/ with the loader the Worker uses; `nudge rules publish` makes rules/ live through KV; `nudge report`
measures each rule's lift over its holdout. Plain stdlib (argparse), so it runs from the repo's venv
(`nudge report` also needs the `report` extra: scipy and matplotlib, imported only when it runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from nudge.kv_keys import POINTER_KEY, blob_key
from nudge.rules.blob import compile_blob
from nudge.rules.load import RuleError, load_ruleset
from nudge.rules.model import RuleSet
from nudge.signing import BadData, Signer
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.pages import same_site_path
from nudge.visitor.session import VISIT_TIMEOUT, Session, SessionCodec
from nudge_tools.inputs import (
    DEV_VARS,
    REPO_ROOT,
    SECRET_VAR,
    UsageError,
    cookie_value,
    default_rules_dir,
    find_secrets,
    read_rule_files,
)
from nudge_tools.simulate import Report, RuleReport, generate, replay

PAGES_FILE = "pages.toml"
LOCAL_STATE = REPO_ROOT / ".nudge-local"  # where the local edge runtime keeps its state by default

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


# -- output ---------------------------------------------------------------------------------------


def session_fields(session: Session) -> dict[str, Any]:
    """The session as it travels in the cookie (not the per-request `is_new`/`ended`)."""
    fields = dataclasses.asdict(session)
    fields.pop("is_new", None)
    fields.pop("ended", None)
    return fields


def _json_default(value: object) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def print_json(data: object, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default), file=out)


# -- commands -------------------------------------------------------------------------------------


def session_decode(args: argparse.Namespace) -> int:
    raw = sys.stdin.read() if args.cookie in (None, "-") else args.cookie
    value = cookie_value(raw)
    codec = SessionCodec(Signer(find_secrets(args.secret), "session"))
    try:
        session = codec.decode(value)
    except BadData as exc:
        print_json({"valid": False, "reason": f"{exc}: the Worker would ignore this cookie and start a "
                                             f"fresh session (new visitor id)"}, sys.stdout)
        return EXIT_INVALID
    now = int(time.time()) if args.now is None else args.now
    rules_dir = args.rules or default_rules_dir()
    try:  # only the page patterns: a broken rule file should not stop a cookie from being read
        pages = read_rule_files(rules_dir).get(PAGES_FILE)
        if pages is None:
            raise UsageError(f"{rules_dir / PAGES_FILE}: not found (page patterns classify --path)")
        classifier = load_ruleset({PAGES_FILE: pages}).classifier
    except RuleError as exc:
        raise UsageError(f"{rules_dir / exc.file}: {exc.field}: {exc.message}") from exc
    path = args.path.split("?", 1)[0] or "/"
    page = classifier.classify(path)
    attributes = visitor_attributes(session, page, None, now, RequestContext(path=path))
    print_json({"valid": True, "visitor": session.visitor_id, "session": session_fields(session),
                "attributes": attributes}, sys.stdout)
    idle = now - session.last_seen
    if idle > VISIT_TIMEOUT:
        print(f"note: idle {idle} s at --now (over {VISIT_TIMEOUT} s): the Worker would start a new visit, "
              "keeping only the visitor id and cart", file=sys.stderr)
    return EXIT_OK


def _where(directory: Path, exc: RuleError) -> str:
    line = f":{exc.line}" if exc.line else ""
    return f"{directory / exc.file}{line}: {exc.field}: {exc.message}"


def _load_rules(directory: Path) -> RuleSet | None:
    """The rule set in `directory`, or None after printing where it is invalid."""
    try:
        return load_ruleset(read_rule_files(directory))
    except RuleError as exc:
        print(_where(directory, exc), file=sys.stderr)
        return None


def rules_check(args: argparse.Namespace) -> int:
    ruleset = _load_rules(args.dir or default_rules_dir())
    if ruleset is None:
        return EXIT_INVALID
    n, f = len(ruleset.rules), len(ruleset.followups)
    print(f"ok: {n} rule{'' if n == 1 else 's'}" + (f" and {f} follow-up{'' if f == 1 else 's'}" if f else ""))
    return EXIT_OK


WRANGLER_BIN = REPO_ROOT / "node_modules" / ".bin"  # wrangler and the Node 22 it needs (`make setup`)


def _kv_put_commands(args: argparse.Namespace, pairs: list[tuple[str, Path]]) -> list[list[str]]:
    """The commands that write (key, file) pairs in order, one `wrangler kv key put` per key: to the
    local runtime's KV in --persist-to (what `wrangler dev --persist-to` reads), or with `--remote`
    to Cloudflare's."""
    wrangler = str(WRANGLER_BIN / "wrangler")
    where = ["--remote"] if args.remote else ["--local", "--persist-to", str(Path(args.persist_to).resolve())]
    return [[wrangler, "kv", "key", "put", *where, "--binding", args.binding, key, "--path", str(path)]
            for key, path in pairs]


def _wrangler_environment() -> dict[str, str]:
    """This environment with node_modules/.bin first on PATH (wrangler refuses the Node < 22 a
    system may have) and wrangler's usage metrics off."""
    return {**os.environ, "PATH": f"{WRANGLER_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "WRANGLER_SEND_METRICS": "false"}


def rules_publish(args: argparse.Namespace) -> int:
    directory: Path = args.dir or default_rules_dir()
    try:
        version, blob = compile_blob(read_rule_files(directory), int(time.time()))
    except RuleError as exc:
        print(f"{_where(directory, exc)} (nothing published)", file=sys.stderr)
        return EXIT_INVALID
    with tempfile.TemporaryDirectory() as tmp:
        blob_path, pointer_path = Path(tmp) / "blob", Path(tmp) / "pointer"
        blob_path.write_bytes(blob)
        pointer_path.write_text(version)
        # The blob first, then the pointer: a Worker never follows a pointer to a missing blob.
        for cmd in _kv_put_commands(args, [(blob_key(version), blob_path), (POINTER_KEY, pointer_path)]):
            done = subprocess.run(cmd, cwd=REPO_ROOT, env=_wrangler_environment(), capture_output=True, text=True)
            if done.returncode != 0:
                print(f"nudge: publishing failed: {' '.join(cmd)}\n{done.stdout}{done.stderr}", file=sys.stderr)
                return EXIT_INVALID
    where = "Cloudflare KV (--remote)" if args.remote else f"local KV in {args.persist_to}"
    print(f"published rules {version} to {where}")
    return EXIT_OK


def simulate(args: argparse.Namespace) -> int:
    ruleset = _load_rules(args.rules or default_rules_dir())
    if ruleset is None:
        return EXIT_INVALID
    if args.generate:
        target = args.sessions.open("w") if args.sessions else sys.stdout
        with target:
            for line in generate(args.generate, args.seed):
                target.write(line + "\n")
        return EXIT_OK
    if not args.sessions:
        raise UsageError("give --sessions FILE.jsonl to replay (or --generate N to make one)")
    lines = args.sessions.read_text(encoding="utf-8").splitlines()
    report = Report(rules={r.id: RuleReport() for r in ruleset.rules})
    step = max(1, len(lines) // 40)
    for i in range(0, len(lines), step):
        replay(lines[i:i + step], ruleset, report)
        done = min(len(lines), i + step)
        if sys.stderr.isatty() or args.progress:
            bar = "#" * (40 * done // max(1, len(lines)))
            print(f"\r[{bar:<40}] {done}/{len(lines)} sessions", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty() or args.progress:
        print(file=sys.stderr)
    print(report.table())
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    # scipy (and matplotlib for --html): imported only here, so the other commands stay fast
    from nudge_tools.report import lift, sources, text

    if args.window_days <= 0 or args.since <= 0:
        raise UsageError("--window-days and --since must be positive")
    ruleset = _load_rules(args.rules or default_rules_dir())
    if ruleset is None:
        return EXIT_INVALID
    now = time.time()
    try:
        if args.remote:
            account, token = sources.remote_credentials()
            events = sources.load_remote(account, token, args.since)
        else:
            events = sources.load_local(args.persist_to / sources.EVENTS_FILE, now, args.since)
    except sources.ReportError as exc:
        raise UsageError(str(exc)) from exc
    result = lift.analyze(events, ruleset, args.window_days, args.since)
    print(text.text_report(result))
    if args.html:
        from nudge_tools.report.html import html_report  # matplotlib: only for --html

        args.html.write_text(html_report(result), encoding="utf-8")
        print(f"\nwrote {args.html}")
    return EXIT_OK


def _rules_dir_option(parser: argparse.ArgumentParser, flag: str) -> None:
    parser.add_argument(flag, type=Path, metavar="DIR", help="the rules directory (default: ./rules, else the repo's)")


type Commands = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers returns


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nudge", description="Debug what the nudge Worker sees.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_session_commands, _add_rules_commands, _add_simulate_command, _add_report_command,
                _add_preview_command):
        add(commands)
    return parser


def _add_session_commands(commands: Commands) -> None:
    session = commands.add_parser("session", help="inspect a shopper's session cookie",
                                  description="Inspect a shopper's session cookie.")
    session_commands = session.add_subparsers(dest="action", required=True, metavar="ACTION")
    decode = session_commands.add_parser(
        "decode", help="verify a nudge cookie and print its session and visitor attributes as JSON",
        description="Verify a `nudge` session cookie and print its session and the visitor attributes "
                    "rule conditions would see (as the cookie stands, before the Worker counts the page). "
                    "Exit 1 when the cookie does not verify, 2 when there is no secret or no cookie.")
    decode.add_argument("cookie", nargs="?", metavar="COOKIE",
                        help="the cookie value, a `nudge=...` pair or a whole Cookie header; "
                             "'-' or absent: read stdin")
    decode.add_argument("--secret", help=f"signing secret(s); default ${SECRET_VAR}, then ./{DEV_VARS}")
    decode.add_argument("--now", type=int, metavar="UNIX", help="the clock, in Unix seconds (default: now)")
    decode.add_argument("--path", default="/", help="the page the attributes are for (default: /)")
    decode.add_argument("--rules", type=Path, metavar="DIR",
                        help="where pages.toml is (default: ./rules, else the repo's)")
    decode.set_defaults(run=session_decode)


def _add_rules_commands(commands: Commands) -> None:
    rules = commands.add_parser("rules", help="work with rules/*.toml", description="Work with rules/*.toml.")
    rules_commands = rules.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = rules_commands.add_parser(
        "check", help="validate every rule file with the Worker's loader",
        description="Validate every *.toml in the rules directory with the loader the Worker uses. "
                    "Exit 1 and name the file and field on the first error.")
    _rules_dir_option(check, "--dir")
    check.set_defaults(run=rules_check)
    publish = rules_commands.add_parser(
        "publish", help="validate rules/ and make it live through KV, without a deploy",
        description="Validate the rules directory, write it as one versioned blob to KV and move the "
                    "`rules:current` pointer to it. Workers pick it up within NUDGE_RULES_REFRESH_SECONDS. "
                    "Nothing is published when a rule is invalid.")
    _rules_dir_option(publish, "--dir")
    publish.add_argument("--persist-to", type=Path, default=LOCAL_STATE, metavar="DIR",
                         help="the local runtime's state folder, as `wrangler dev --persist-to` "
                              "(default: the repo's .nudge-local)")
    publish.add_argument("--binding", default="NUDGE_KV", help="the KV binding name (default: NUDGE_KV)")
    publish.add_argument("--remote", action="store_true", help="write to Cloudflare through `wrangler kv key put`")
    publish.set_defaults(run=rules_publish)


def _add_simulate_command(commands: Commands) -> None:
    sim = commands.add_parser(
        "simulate", help="replay recorded sessions through the rules and report reach and conflicts",
        description="Replay sessions (JSON lines: visitor, start, events of pages, dwell and beacons) "
                    "through the rule engine; print per rule: visitors reached, impressions after caps, "
                    "held out, conflicts lost. --generate N writes N synthetic sessions instead.")
    sim.add_argument("--sessions", type=Path, metavar="FILE.jsonl",
                     help="sessions to replay (or to write with --generate)")
    sim.add_argument("--generate", type=int, metavar="N", help="write N realistic synthetic sessions")
    sim.add_argument("--seed", type=int, default=1, help="random seed for --generate (default 1)")
    _rules_dir_option(sim, "--rules")
    sim.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    sim.set_defaults(run=simulate)


def _add_report_command(commands: Commands) -> None:
    rep = commands.add_parser(
        "report", help="prove each rule's lift over its holdout from the recorded events",
        description="Per rule and variant: visitors exposed, impressions, CTR, conversion rate within the "
                    "attribution window after the first exposure, revenue per visitor, and the lift of each "
                    "variant over the holdout with a 95% interval, p-value and verdict; a sample ratio check "
                    "against the configured split. Events come from the local runtime, or with --remote from "
                    "the Analytics Engine SQL API (needs $CLOUDFLARE_ACCOUNT_ID and $CLOUDFLARE_API_TOKEN).")
    rep.add_argument("--persist-to", type=Path, default=LOCAL_STATE, metavar="DIR",
                     help="the local edge runtime's state folder (default: the repo's .nudge-local)")
    rep.add_argument("--remote", action="store_true", help="read the events from Cloudflare's Analytics Engine")
    _rules_dir_option(rep, "--rules")
    rep.add_argument("--window-days", type=float, default=7, metavar="N",
                     help="attribution window after a visitor's first exposure, in days (default 7)")
    rep.add_argument("--since", type=int, default=30, metavar="DAYS", help="events of the last DAYS days (default 30)")
    rep.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report with charts")
    rep.set_defaults(run=report)


def _add_preview_command(commands: Commands) -> None:
    prev = commands.add_parser(
        "preview", help="mint a signed link that shows one rule in your own browser",
        description="Print a link that, opened in a browser, shows RULE (in --variant) on every page at once, "
                    "bypassing its conditions, caps and trigger thresholds, for --hours. Nothing about that "
                    "browser is recorded while previewing; /_nudge/preview?end=1 stops it.")
    prev.add_argument("rule", metavar="RULE", help="the rule id")
    prev.add_argument("--variant", type=int, default=0, help="variant index (default 0)")
    prev.add_argument("--hours", type=int, default=24, help="how long the link works, 1..72 (default 24)")
    prev.add_argument("--path", default="/", help="the page the link lands on (default /)")
    prev.add_argument("--base-url", default="http://127.0.0.1:8787", help="the shop's address (default: make dev's)")
    prev.add_argument("--secret", help=f"signing secret(s); default ${SECRET_VAR}, then ./{DEV_VARS}")
    _rules_dir_option(prev, "--rules")
    prev.set_defaults(run=preview)


def preview(args: argparse.Namespace) -> int:
    """`nudge preview RULE`: a signed, expiring preview link."""
    from urllib.parse import quote

    from nudge.rules.preview import PreviewTokens

    ruleset = _load_rules(args.rules or default_rules_dir())
    if ruleset is None:
        return EXIT_INVALID
    rule = ruleset.rule(args.rule)
    if rule is None:
        raise UsageError(f"no rule {args.rule!r}; rules: {', '.join(r.id for r in ruleset.rules)}")
    variants = max(1, len(rule.variants))
    if not 0 <= args.variant < variants:
        raise UsageError(f"{rule.id} has {variants} variant(s): use --variant 0..{variants - 1}")
    if not same_site_path(args.path):
        raise UsageError("--path must be a same-site path like /collections/sneakers")
    try:
        tokens = PreviewTokens(Signer(find_secrets(args.secret), "preview"))
        token = tokens.mint(rule.id, args.variant, int(time.time()), args.hours)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.base_url.rstrip('/')}/_nudge/preview?t={quote(token, safe='')}&path={quote(args.path, safe='/')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nudge` / `python -m nudge_tools`; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"nudge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `nudge session decode ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_INVALID
    return code
