"""Synthetic shoppers with a known conversion probability, driven through nudge on workerd, so
that `nudge report` can be checked against the truth (issue 6, "simulation of lift").

One `Scenario` is one rule: a banner shown as the page loads on its own category page
(`/collections/<rule id>`), with `HOLDOUT_PERCENT` of visitors held out. Each synthetic visitor
(its own cookie jar) requests that page once, reads from the HTML whether the banner was actually
there (holdout visitors get none), and converts with probability `base`, plus `lift` when it was
shown, through the real conversion path: the shop's order confirmation page, whose origin response
names the order and its revenue in `X-Nudge-Order` (the only purchases nudge counts; a browser's
`purchase` beacon is measured as unverified). The Worker writes exposures,
impressions and conversions to the Analytics Engine binding and, locally, echoes each point to its
output (NUDGE_LOCAL_EVENTS=log, workerd's binding keeps nothing); `Simulation.events` copies them to
`<persist-to>/analytics/nudge_events.jsonl` as `make dev` does, and `Simulation.report` reads them
back with the functions `nudge report` uses.

It is tooling (tools/nudge_tools) because both the runtime test and bench/lift.py drive it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import httpx

import nudge
from nudge.rules.blob import rules_version
from nudge.rules.load import load_ruleset
from nudge.rules.model import RuleSet
from nudge.signing import Signer
from nudge.visitor.session import COOKIE_NAME, SessionCodec
from nudge_tools.inputs import read_rule_files
from nudge_tools.origin import serving_origin
from nudge_tools.processes import REPO_ROOT, Process, events, local_edge
from nudge_tools.report.lift import LiftReport, analyze
from nudge_tools.report.sources import EVENTS_FILE, Events, load_local

SECRET = "traffic-simulation-secret"
CODEC = SessionCodec(Signer([SECRET.encode()], "session"))
# Half the visitors held out: for a fixed number of visitors, equal arms give the narrowest
# interval for a difference of two similar rates (the most power); 50 is the most a rule allows.
HOLDOUT_PERCENT = 50
CONFIRMATION = "/checkout/thank-you"
WINDOW_DAYS, SINCE_DAYS = 7.0, 30  # `nudge report`'s defaults
_CONFIG_TAG = '<script type="application/json" id="nudge-config">'
PAGES_TOML = (REPO_ROOT / "rules" / "pages.toml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Scenario:
    """One simulated rule and its visitors' true conversion probabilities."""

    name: str  # lowercase letters, digits, '-': the rule id is `sim-<name>`
    base: float  # conversion probability when the nudge is not shown
    lift: float  # added to it when the nudge is shown (absolute)
    visitors: int
    # False: every visitor converts independently with their probability (the real thing).
    # True: each arm converts an exact share (the k-th visitor of an arm converts when
    # floor((k+1)·p) > floor(k·p)), so observed rates are the true ones to within 1/n and only
    # the split between arms is random: for tests that must not flake.
    systematic: bool = False

    @property
    def rule_id(self) -> str:
        return f"sim-{self.name}"

    @property
    def page(self) -> str:
        return f"/collections/{self.rule_id}"

    def rule_toml(self) -> str:
        return (f'id = "{self.rule_id}"\n'
                f'description = "simulated: {self.base:.1%} base, {self.lift * 100:+.1f} pp when shown"\n'
                f'pages = ["{self.page}"]\n'
                f'trigger = "page_load"\n'
                f'holdout = {HOLDOUT_PERCENT}\n'
                f'[action]\nkind = "banner"\ntitle = "Free shipping today"\nbody = "On every order over $100"\n')


@dataclass(frozen=True)
class Visit:
    """What one synthetic visitor did, as the generator saw it."""

    visitor: str  # the id in the session cookie (and in the events)
    shown: bool  # the banner was in the page
    converted: bool
    revenue: float


@dataclass(frozen=True)
class Run:
    scenario: Scenario
    visits: tuple[Visit, ...]
    requests: int
    seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def arm(self, shown: bool) -> tuple[int, int]:
        """(visitors, conversions) of the visitors who saw the nudge (True) or not."""
        members = [v for v in self.visits if v.shown == shown]
        return len(members), sum(v.converted for v in members)


class _Quota:
    """Systematic conversions: the k-th visitor of an arm converts when floor((k+1)·p) > floor(k·p)."""

    def __init__(self) -> None:
        self._seen: dict[bool, int] = {True: 0, False: 0}
        self._lock = threading.Lock()

    def converts(self, shown: bool, p: float) -> bool:
        rate = Fraction(str(p))
        with self._lock:
            k = self._seen[shown]
            self._seen[shown] = k + 1
        return (k + 1) * rate // 1 > k * rate // 1


def _config(html: str) -> dict[str, object]:
    """The nudge-config JSON the Worker put in a page (KeyError when it is not there)."""
    start = html.index(_CONFIG_TAG) + len(_CONFIG_TAG)
    data: dict[str, object] = json.loads(html[start:html.index("</script>", start)])
    return data


class Simulation:
    """An origin, nudge on workerd (own KV; its Analytics Engine points in its output) and a
    published rule per scenario."""

    def __init__(self, url: str, persist: Path, rules_dir: Path, process: Process) -> None:
        self.url, self.persist, self.rules_dir, self.process = url, persist, rules_dir, process
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def events_path(self) -> Path:
        return self.persist / EVENTS_FILE

    def ruleset(self) -> RuleSet:
        return load_ruleset(read_rule_files(self.rules_dir))

    def _client(self) -> httpx.Client:
        """One client (connection pool) per thread; each visitor starts with an empty cookie jar."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(base_url=self.url, timeout=60)
            with self._lock:
                self._clients.append(client)
        return client

    def _visit(self, scenario: Scenario, index: int, seed: int, quota: _Quota) -> tuple[Visit, int]:
        """One visitor: the rule's page, then maybe the order confirmation (X-Nudge-Order from the origin)."""
        rng = random.Random(f"{seed}:{scenario.name}:{index}")
        client = self._client()
        client.cookies.clear()
        page = client.get(scenario.page)
        if page.status_code != 200 or COOKIE_NAME not in client.cookies:
            raise RuntimeError(f"{scenario.page} answered {page.status_code} without a nudge cookie")
        _config(page.text)  # the Worker handled the page (not passed through)
        session = CODEC.decode(client.cookies[COOKIE_NAME])
        shown = f'data-nudge-rule="{scenario.rule_id}"' in page.text
        p = scenario.base + (scenario.lift if shown else 0.0)
        draw, revenue = rng.random(), round(rng.uniform(20, 200), 2)
        converted = quota.converts(shown, p) if scenario.systematic else draw < p
        if not converted:
            return Visit(session.visitor_id, shown, False, 0.0), 1
        order = {"order": f"sim-{seed}-{scenario.name}-{index}", "value": f"{revenue:.2f}"}
        thanks = client.get(CONFIRMATION, params=order)
        if thanks.status_code != 200 or "x-nudge-order" in thanks.headers:
            raise RuntimeError(f"the confirmation page answered {thanks.status_code} {dict(thanks.headers)}")
        _config(thanks.text)  # the Worker handled the page, and with it the order
        return Visit(session.visitor_id, shown, True, revenue), 2

    def run(self, scenario: Scenario, seed: int = 0, concurrency: int = 8,
            progress: Callable[[int], None] | None = None) -> Run:
        """Sends the scenario's visitors (`concurrency` at a time); returns once every one is done."""
        quota = _Quota()
        visits: list[Visit] = []
        requests = 0
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                for done, (visit, sent) in enumerate(
                        pool.map(lambda i: self._visit(scenario, i, seed, quota), range(scenario.visitors)), 1):
                    visits.append(visit)
                    requests += sent
                    if progress and done % 1000 == 0:
                        progress(done)
        finally:
            with self._lock:  # the pool's threads are gone: close their clients
                for client in self._clients:
                    client.close()
                self._clients.clear()
        seconds = time.perf_counter() - start
        return Run(scenario, tuple(visits), requests, seconds)

    def wait_for_events(self, runs: Sequence[Run], seconds: float = 60) -> None:
        """Polls until the Worker has written every visitor's exposure and every conversion (in
        waitUntil, after the response); raises with the runtime's output when `seconds` pass."""
        rules = {r.scenario.rule_id for r in runs}
        want = (sum(len(r.visits) for r in runs), sum(v.converted for r in runs for v in r.visits))
        deadline = time.monotonic() + seconds
        while True:
            points = events(self.process)
            got = (sum(p["blobs"][0] == "exposure" and p["blobs"][1] in rules for p in points),  # type: ignore[index]
                   sum(p["blobs"][0] == "conversion" for p in points))  # type: ignore[index]
            if got >= want:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"events written: {got} (exposures, conversions), expected {want}\n"
                                   f"--- the runtime's output:\n{self.process.output()}")
            time.sleep(0.2)

    def events(self) -> Events:
        """The runtime's events, read as `nudge report` reads them: the points the Worker echoed,
        copied to the local events file (as `make dev` does), then load_local."""
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        self.events_path.write_text("".join(json.dumps(p, separators=(",", ":")) + "\n" for p in events(self.process)),
                                    encoding="utf-8")
        return load_local(self.events_path, time.time(), SINCE_DAYS)

    def report(self, events: Events | None = None, keep: Callable[[str], bool] | None = None) -> LiftReport:
        """`nudge report` on the runtime's events (the same load_local + analyze), optionally on
        the rows of the visitors `keep` accepts only (a replicate)."""
        events = self.events() if events is None else events
        if keep is not None:
            events = Events(tuple(r for r in events.rows if keep(r.visitor)), events.bad_rows,
                            events.source, events.note)
        return analyze(events, self.ruleset(), WINDOW_DAYS, SINCE_DAYS)


def exposure_groups(events: Events, rule_id: str) -> dict[str, str]:
    """Each visitor's group (treatment, holdout) in the rule's exposure events, as recorded."""
    return {r.visitor: r.group for r in events.rows if r.kind == "exposure" and r.rule == rule_id}


def rules_with_shop(rules_dir: Path, shop: str, offer: str = "") -> Path:
    """The repo's rules copied to `rules_dir`, the demo's offer line of site.toml's [shop]
    (`offer_apply = "header"`) replaced by `shop`, and `offer` lines added to the story's [offer]."""
    shutil.copytree(REPO_ROOT / "rules", rules_dir, dirs_exist_ok=True)
    site = rules_dir / "site.toml"
    site.write_text((REPO_ROOT / "rules" / "site.toml").read_text().replace('offer_apply = "header"', shop))
    story = rules_dir / "sneakers-exit-intent.toml"
    story.write_text((REPO_ROOT / "rules" / story.name).read_text().replace("percent = 10\n", f"percent = 10\n{offer}"))
    return rules_dir


# A shop whose cart charges what X-Nudge-Offer says but whose pages show list prices: nudge shows
# the discount on the prices they mark (offer_apply.py).
HONOURED = 'offer_apply = "header"\noffer_header = "honoured"'


def publish(rules_dir: Path, persist: Path) -> str:
    """`nudge rules publish` of `rules_dir` into the local KV (with this checkout's nudge)."""
    checkout = Path(nudge.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'src'}:{checkout / 'tools'}"}
    done = subprocess.run([sys.executable, "-m", "nudge_tools", "rules", "publish", "--dir", str(rules_dir),
                           "--persist-to", str(persist)], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"nudge rules publish failed:\n{done.stderr}")
    return rules_version(read_rule_files(rules_dir))


@contextmanager
def simulation(scenarios: Sequence[Scenario], workdir: Path) -> Iterator[Simulation]:
    """An origin and nudge on workerd serving one published rule per scenario (and nothing else)."""
    rules_dir, persist = workdir / "rules", workdir / "state"
    rules_dir.mkdir(parents=True)
    (rules_dir / "pages.toml").write_text(PAGES_TOML, encoding="utf-8")
    for s in scenarios:
        (rules_dir / f"{s.rule_id}.toml").write_text(s.rule_toml(), encoding="utf-8")
    version = publish(rules_dir, persist)
    with serving_origin() as (origin, _):
        with local_edge(origin, persist, SECRET, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as (url, process), \
                httpx.Client(base_url=url, timeout=30) as c:
            deadline = time.monotonic() + 30
            while c.get("/_nudge/health").json()["rules_version"] != version:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the edge never served the published rules {version}\n"
                                       f"--- the runtime's output:\n{process.output()}")
                time.sleep(0.2)
            yield Simulation(url, persist, rules_dir, process)
