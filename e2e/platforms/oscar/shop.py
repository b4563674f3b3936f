"""Runs the stock Oscar shop for the tests: its state built once per content of this folder (24 s
of migrations on the 2-core machine) and copied per run, then served by waitress on a free port."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nudge_tools.processes import REPO_ROOT, Process, free_port, running

HERE = Path(__file__).resolve().parent
CACHE = REPO_ROOT / "build" / "e2e-oscar"
_PINNED = ("django-oscar", "Django", "django-haystack", "Whoosh", "sorl-thumbnail")


@dataclass(frozen=True)
class OscarShop:
    url: str  # the shop, direct (http://127.0.0.1:PORT)
    data: Path  # its state: shop.sqlite3, whoosh_index/, media/
    process: Process  # waitress: its output has Django's warnings (a refused CSRF check names why)


def _state_key() -> str:
    """What the built state depends on: this folder's code and the installed platform's versions."""
    digest = hashlib.sha256()
    for path in sorted(HERE.glob("*.py")):
        digest.update(path.read_bytes())
    for name in _PINNED:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    return digest.hexdigest()[:16]


def _environment(data: Path) -> dict[str, str]:
    return {"OSCAR_SHOP_DATA": str(data), "DJANGO_SETTINGS_MODULE": "e2e.platforms.oscar.settings",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}


def built_state() -> Path:
    """The folder holding a freshly set-up shop's state, built now if none matches the code. Built in
    a temporary folder and renamed into place, so a concurrent run never sees half a shop."""
    ready = CACHE / _state_key()
    if ready.is_dir():
        return ready
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="building-", dir=CACHE))
    done = subprocess.run([sys.executable, "-m", "e2e.platforms.oscar.setup_shop"], cwd=REPO_ROOT,
                          env={**os.environ, **_environment(building)}, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"setting up the Oscar shop failed:\n{done.stdout}{done.stderr}")
    try:
        building.rename(ready)
    except OSError:  # another run renamed its copy first: use that one
        shutil.rmtree(building, ignore_errors=True)
    return ready


def _server_command(server: str, port: int) -> tuple[list[str], str]:
    """(command, ready line) of a WSGI server for the shop. waitress is what a shop would deploy;
    Django's own development server (wsgiref) is the strict one: it reads no request body without a
    Content-Length, where waitress (and gunicorn) de-chunk bodies themselves."""
    app = "e2e.platforms.oscar.wsgi:application"
    if server == "waitress":  # it drops X-Forwarded-* unless they come from a proxy it trusts: the edge
        return ([sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4",
                 "--trusted-proxy=127.0.0.1",
                 "--trusted-proxy-headers=x-forwarded-host x-forwarded-proto x-forwarded-for", app], "Serving on")
    if server == "runserver":  # Django reads the forwarded host itself (USE_X_FORWARDED_HOST)
        return ([sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure",
                 "--skip-checks"], "Quit the server with")
    raise ValueError(f"unknown server {server!r}")


@contextmanager
def oscar_shop(data: Path, server: str = "waitress") -> Iterator[OscarShop]:
    """The shop, its state copied into `data` (which must not exist yet), served by `server`
    ("waitress" or Django's "runserver") until the block ends."""
    shutil.copytree(built_state(), data)
    port = free_port()
    cmd, ready = _server_command(server, port)
    with running(cmd, ready, timeout=60, env=_environment(data)) as process:
        yield OscarShop(url=f"http://127.0.0.1:{port}", data=data, process=process)
