"""Starts the demo shop and nudge on workerd (`wrangler dev`) in front of it, and a headless Chromium."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from e2e.platforms.oscar.shop import HERE as OSCAR_HERE
from e2e.platforms.oscar.shop import OscarShop, oscar_shop
from nudge_tools.processes import Process, checkout_python_path, free_port, local_edge, quick_batches_config, running
from nudge_tools.traffic import HONOURED, publish, rules_with_shop

CHROMIUM = "/usr/bin/chromium"
SECRET = "e2e-secret-0123456789abcdef"  # the edge's NUDGE_SECRET here, so tests can read the cookie
WEBHOOK_SECRET = "e2e-webhook-secret"  # shared by the edge and the demo shop's receiver
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OSCAR_RULES = OSCAR_HERE / "rules"  # the Oscar shop's nudge configuration: docs/platforms.md's recipe


@dataclass(frozen=True)
class Stack:
    edge: str  # the shop as shoppers see it, through nudge
    shop: str  # the origin, direct
    state: Path  # the edge's --persist-to folder: Miniflare's KV, cache and queues
    process: Process  # the edge (`wrangler dev`): its output has nudge's log lines and, for
    # nudge_tools.processes.events(), the Analytics Engine points the Worker wrote


def kv_value(stack: Stack, key: str) -> bytes | None:
    """The value of `key` in the edge's KV as Miniflare keeps it under --persist-to (read-only, while
    the edge runs): v3/kv/miniflare-KVNamespaceObject/<hash>.sqlite maps keys to blob ids, the bytes
    are in v3/kv/<namespace id>/blobs/<blob id>. None when the key is not there (yet)."""
    root = stack.state / "v3" / "kv"
    for _ in range(5):  # an overwrite replaces the blob: read the row again if it went in between
        blob_id = None
        for db in (root / "miniflare-KVNamespaceObject").glob("*.sqlite"):
            if db.name == "metadata.sqlite":
                continue
            with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
                try:
                    row = conn.execute("SELECT blob_id FROM _mf_entries WHERE key = ?", (key,)).fetchone()
                except sqlite3.OperationalError:  # the namespace's table is not created yet
                    row = None
            if row is not None:
                blob_id = row[0]
        if blob_id is None:
            return None
        blobs = list(root.glob(f"*/blobs/{blob_id}"))
        if blobs:
            try:
                return blobs[0].read_bytes()
            except FileNotFoundError:
                pass
    return None


@contextmanager
def shop_behind_edge(kv_dir: Path, *edge_flags: str, shop_env: Mapping[str, str] | None = None,
                     followups: bool = False) -> Iterator[Stack]:
    """The demo shop (its process environment extended by `shop_env`) behind nudge on workerd, its
    state in `kv_dir`; `edge_flags` are `--var NAME:VALUE` pairs. With `followups`, the edge sends
    follow-up webhooks to the shop's receiver (/webhooks), its queue consumer with a short batch
    timeout (quick_batches_config)."""
    shop_port = free_port()
    shop = f"http://127.0.0.1:{shop_port}"
    if followups:
        edge_flags = (*edge_flags, "--var", f"NUDGE_WEBHOOK_URL:{shop}/webhooks/nudge",
                      "--var", f"NUDGE_WEBHOOK_SECRET:{WEBHOOK_SECRET}")
        shop_env = {**(shop_env or {}), "NUDGE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    shop_cmd = [sys.executable, "-m", "demo_shop", "--port", str(shop_port)]
    with running(shop_cmd, "Uvicorn running", timeout=30, env={**checkout_python_path(), **(shop_env or {})}):
        with local_edge(shop, kv_dir, SECRET, *edge_flags,
                        config=quick_batches_config() if followups else None) as (edge, process):
            yield Stack(edge=edge, shop=shop, state=kv_dir, process=process)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with shop_behind_edge(tmp_path_factory.mktemp("kv")) as s:
        yield s


@pytest.fixture(scope="module")
def unintegrated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A shop that ignores X-Nudge-Offer (no integration) behind the demo's rules: its cart charges
    full price, so nudge rewrites no price and tells the shopper the code instead."""
    with shop_behind_edge(tmp_path_factory.mktemp("kv-unintegrated"), shop_env={"DEMO_SHOP_IGNORE_OFFER": "1"}) as s:
        yield s


@pytest.fixture(scope="module")
def honoured_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A shop whose cart charges what X-Nudge-Offer says but whose pages show list prices
    (DEMO_SHOP_OFFER=cart), behind rules that say so (`offer_header = "honoured"`, published before
    the edge starts): nudge shows the discount on the prices the pages mark."""
    kv_dir = tmp_path_factory.mktemp("kv-honoured")
    publish(rules_with_shop(tmp_path_factory.mktemp("rules-honoured"), HONOURED), kv_dir)
    with shop_behind_edge(kv_dir, shop_env={"DEMO_SHOP_OFFER": "cart"}) as s:
        yield s


@pytest.fixture(scope="module")
def strict_csp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A shop sending a strict nonce-based Content-Security-Policy, a fresh nonce per response."""
    with shop_behind_edge(tmp_path_factory.mktemp("kv-csp"), shop_env={"DEMO_SHOP_CSP": "strict"}) as s:
        yield s


@pytest.fixture(scope="session")
def oscar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OscarShop]:
    """A stock Django Oscar shop (e2e/platforms/oscar), direct."""
    with oscar_shop(tmp_path_factory.mktemp("oscar") / "shop") as shop:
        yield shop


@contextmanager
def edge_in_front_of(shop: str, kv_dir: Path, rules: Path | None = None) -> Iterator[Stack]:
    """nudge on workerd in front of `shop`, configured only by a rules directory: `rules`, published
    to the edge's KV before it starts (as `nudge rules publish` does), else rules/ as bundled."""
    if rules is not None:
        publish(rules, kv_dir)
    with local_edge(shop, kv_dir, SECRET) as (edge, process):
        yield Stack(edge=edge, shop=shop, state=kv_dir, process=process)


@pytest.fixture(scope="session")
def oscar_stack(oscar: OscarShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nudge on workerd in front of the stock Oscar shop (under waitress), configured by the
    Oscar recipe of docs/platforms.md (e2e/platforms/oscar/rules)."""
    with edge_in_front_of(oscar.url, tmp_path_factory.mktemp("kv-oscar"), OSCAR_RULES) as s:
        yield s


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def clocked_page(browser: Browser, stack: Stack, **context_options: object) -> Iterator[Page]:
    """A page in a fresh context on `stack` (desktop-sized unless told), the page clock installed."""
    options: dict[str, object] = {"viewport": {"width": 1280, "height": 800}, **context_options}
    ctx = browser.new_context(base_url=stack.edge, **options)  # type: ignore[arg-type]
    try:
        p = ctx.new_page()
        p.clock.install()
        yield p
    finally:
        ctx.close()


@pytest.fixture
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=stack.edge, viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    p.clock.install()  # the story's 5 minutes pass on the page's clock, not the test's
    yield p
    p.close()
