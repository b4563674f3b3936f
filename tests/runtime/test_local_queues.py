"""Queues in the local edge runtime (local-edge/queues.mjs) behave as on Cloudflare.

Drives tests/runtime/fixture_queues: its fetch handler sends to the JOBS / FAST producers,
its queue handler records each delivery in KV (GET /seen?tag=...) and acks, retries or
throws as the message body says. Time moves with POST /__local-edge/queues/advance.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.runtime.test_local_edge import SERVER, SITE_PACKAGES, Edge, call
from tests.support.processes import free_port, running

pytestmark = pytest.mark.runtime

FIXTURE = Path(__file__).parent / "fixture_queues"
JOBS = "fixture-jobs"
DLQ = "fixture-jobs-dlq"
FAST = "fixture-fast"


@contextmanager
def start_edge(worker_dir: Path, persist: Path) -> Iterator[Edge]:
    port = free_port()
    cmd = ["node", str(SERVER), "--config", str(worker_dir / "wrangler.toml"), "--port", str(port),
           "--persist-to", str(persist), "--site-packages", str(SITE_PACKAGES)]  # fmt: skip
    with running(cmd, ready=f"ready on http://127.0.0.1:{port}") as process:
        yield Edge(f"http://127.0.0.1:{port}", process, persist)


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("fixture") / "worker"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture(scope="module")
def edge(worker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """One runtime for most tests: loading Pyodide takes seconds."""
    with start_edge(worker_dir, tmp_path_factory.mktemp("state")) as started:
        yield started


@pytest.fixture(autouse=True)
def drained(request: pytest.FixtureRequest) -> None:
    """Tests on the shared runtime start with nothing left waiting in fixture-jobs."""
    if "edge" in request.fixturenames:
        edge: Edge = request.getfixturevalue("edge")
        advance(edge, 86400)
        assert state(edge)["queues"][JOBS]["pending"] == []


# ------------------------------------------------------------------ helpers


def tag() -> str:
    return uuid.uuid4().hex[:12]


def send(edge: Edge, body: Any, raw: bytes | None = None, **params: Any) -> dict[str, Any]:
    """POST /send: the fixture sends `body` (as JSON, or `raw` for kind=text/bytes) to a queue."""
    data = raw if raw is not None else json.dumps(body).encode()
    reply = call(edge.url, f"/send?{urlencode(params)}", method="POST", body=data)
    assert reply.status == 200, (reply.body, edge.process.output())
    result: dict[str, Any] = reply.json()
    return result


def send_batch(edge: Edge, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    body = json.dumps({"messages": messages}).encode()
    reply = call(edge.url, f"/send-batch?{urlencode(params)}", method="POST", body=body)
    assert reply.status == 200, (reply.body, edge.process.output())
    result: dict[str, Any] = reply.json()
    return result


def seen(edge: Edge, name: str) -> list[dict[str, Any]]:
    """The deliveries the consumer recorded for a tag, in order."""
    reply = call(edge.url, f"/seen?tag={name}")
    assert reply.status == 200, (reply.body, edge.process.output())
    records: list[dict[str, Any]] = json.loads(reply.body)
    return records


def advance(edge: Edge, seconds: float) -> dict[str, Any]:
    reply = call(edge.url, f"/__local-edge/queues/advance?seconds={seconds}", method="POST")
    assert reply.status == 200, (reply.body, edge.process.output())
    result: dict[str, Any] = reply.json()
    return result


def state(edge: Edge) -> dict[str, Any]:
    reply = call(edge.url, "/__local-edge/queues")
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.json()
    return result


def pending(edge: Edge, queue: str = JOBS) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = state(edge)["queues"][queue]["pending"]
    return messages


def deliveries_of(report: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    return [d for d in report["deliveries"] if message_id in [m["id"] for m in d["messages"]]]


# ------------------------------------------------------------------ delivery


def test_a_delayed_message_is_delivered_only_once_its_delay_has_passed(edge: Edge) -> None:
    name = tag()
    assert "error" not in send(edge, {"tag": name, "action": "ack"}, delay=900)
    [message] = pending(edge)
    assert message["attempts"] == 0
    assert 898 < message["dueInSeconds"] <= 900
    assert message["body"] == {"tag": name, "action": "ack"}

    assert advance(edge, 899)["deliveries"] == []
    assert seen(edge, name) == []
    report = advance(edge, 1)
    [delivery] = report["deliveries"]
    assert delivery["queue"] == JOBS
    assert delivery["messages"] == [{"id": message["id"], "attempts": 1}]
    assert (delivery["outcome"], delivery["acked"]) == ("ok", [message["id"]])
    [record] = seen(edge, name)
    assert (record["id"], record["attempts"], record["queue"]) == (message["id"], 1, JOBS)
    assert pending(edge) == []


@pytest.mark.parametrize(
    ("kind", "content_type", "value", "body_type"),
    [
        ("json", None, {"nested": {"list": [1, 2.5, None, True]}, "text": "caf\u00e9 \u2713"}, "JsDict"),
        ("json", "v8", {"nested": {"list": [1, 2.5, None, True]}, "text": "caf\u00e9 \u2713"}, "JsDict"),
        ("json", "json", ["a", {"b": None}], "list"),
        ("text", None, "a plain str, caf\u00e9 \u2713", "str"),
        ("text", "text", "a plain str, caf\u00e9 \u2713", "str"),
        ("text", "v8", "a plain str, caf\u00e9 \u2713", "str"),
        ("bytes", "bytes", {"hex": "00ff6869"}, "memoryview"),
    ],
    ids=["dict-default-json", "dict-v8", "list-json", "str-default-json", "str-text", "str-v8", "bytes"],
)
def test_python_bodies_arrive_intact(
    edge: Edge, kind: str, content_type: str | None, value: Any, body_type: str
) -> None:
    name = tag()
    if kind == "json":
        value = {**value, "tag": name} if isinstance(value, dict) else [*value, name]
        raw = None
    elif kind == "text":
        value = f"{value} {name}"
        raw = value.encode()
    else:
        raw = bytes.fromhex(value["hex"]) + name.encode()
        value = {"hex": raw.hex()}
    params = {"kind": kind, **({"content_type": content_type} if content_type else {})}
    assert "error" not in send(edge, value, raw=raw, **params)
    advance(edge, 0)
    records = seen(edge, name) if isinstance(value, dict) and kind == "json" else seen(edge, "plain")
    [record] = [r for r in records if r["body"] == value]
    assert record["body_type"] == body_type


def test_the_default_content_type_is_json_from_the_compatibility_date(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name})
    [message] = [m for m in pending(edge) if m["body"] == {"tag": name}]
    assert message["contentType"] == "json"  # compatibility_date 2026-04-01 >= 2024-03-18
    send(edge, {"tag": name}, content_type="v8")
    assert {m["contentType"] for m in pending(edge)} == {"json", "v8"}


def test_retry_increments_attempts_and_waits_the_consumers_retry_delay(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name, "action": "retry", "until": 3})
    first = advance(edge, 0)
    [delivery] = first["deliveries"]
    message_id = delivery["messages"][0]["id"]
    assert delivery["retried"] == [{"id": message_id, "delaySeconds": 30}]  # retry_delay = 30
    [waiting] = pending(edge)
    assert waiting["attempts"] == 1
    assert 29 < waiting["dueInSeconds"] <= 30

    assert advance(edge, 29)["deliveries"] == []
    assert advance(edge, 1)["deliveries"][0]["messages"] == [{"id": message_id, "attempts": 2}]
    assert advance(edge, 30)["deliveries"][0]["acked"] == [message_id]
    assert [(r["id"], r["attempts"]) for r in seen(edge, name)] == [(message_id, 1), (message_id, 2), (message_id, 3)]
    assert pending(edge) == []


def test_an_explicit_retry_delay_wins_over_the_consumers(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name, "action": "retry", "delay": 600, "until": 2})
    [delivery] = advance(edge, 0)["deliveries"]
    assert delivery["retried"][0]["delaySeconds"] == 600
    assert advance(edge, 599)["deliveries"] == []
    [again] = advance(edge, 1)["deliveries"]
    assert again["acked"] == [delivery["retried"][0]["id"]]
    assert [r["attempts"] for r in seen(edge, name)] == [1, 2]


def test_a_throwing_handler_retries_the_batch_except_explicit_acks(edge: Edge) -> None:
    name = tag()
    send_batch(
        edge,
        [
            {"body": {"tag": name, "n": 1, "action": "ack"}},
            {"body": {"tag": name, "n": 2, "action": "throw", "until": 2}},
            {"body": {"tag": name, "n": 3}},
        ],
    )
    [delivery] = advance(edge, 0)["deliveries"]
    first, second, third = (m["id"] for m in delivery["messages"])
    assert delivery["outcome"] == "exception"
    assert delivery["error"] == "RuntimeError: fixture consumer failed on purpose"
    assert delivery["acked"] == [first]
    assert delivery["retried"] == [{"id": second, "delaySeconds": 30}, {"id": third, "delaySeconds": 30}]
    edge.process.wait_for_output("RuntimeError: fixture consumer failed on purpose")

    [again] = advance(edge, 30)["deliveries"]
    assert again["messages"] == [{"id": second, "attempts": 2}, {"id": third, "attempts": 2}]
    assert (again["outcome"], again["acked"]) == ("ok", [second, third])
    assert sorted((r["body"]["n"], r["attempts"]) for r in seen(edge, name)) == [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2)]


def test_max_retries_moves_the_message_to_the_dead_letter_queue(edge: Edge) -> None:
    name = tag()
    before = state(edge)["queues"]
    send(edge, {"tag": name, "action": "throw"})
    # One advance covers the retries falling due inside it (retry_delay 30 s), in order.
    report = advance(edge, 120)
    deliveries = [d for d in report["deliveries"] if d["queue"] == JOBS]
    message_id = deliveries[0]["messages"][0]["id"]
    assert [d["messages"] for d in deliveries] == [[{"id": message_id, "attempts": n}] for n in (1, 2, 3)]
    assert [d["retried"] for d in deliveries[:2]] == [[{"id": message_id, "delaySeconds": 30}]] * 2
    assert deliveries[2]["deadLettered"] == [message_id]  # max_retries = 2: after the third attempt
    assert [r["attempts"] for r in seen(edge, name)] == [1, 2, 3]

    after = state(edge)["queues"]
    assert pending(edge) == []
    [listed] = [d for d in after[JOBS]["deadLettered"] if d["id"] == message_id]
    assert (listed["attempts"], listed["deadLetterQueue"]) == (3, DLQ)
    # The dead letter queue has no consumer: it keeps the message, same id, same body.
    [held] = [m for m in after[DLQ]["pending"] if m["id"] == message_id]
    assert held["body"] == {"tag": name, "action": "throw"}
    assert held["attempts"] == 0
    assert after[DLQ]["consumer"] is None
    assert after[JOBS]["counters"]["deadLettered"] == before[JOBS]["counters"]["deadLettered"] + 1
    assert after[JOBS]["counters"]["retried"] == before[JOBS]["counters"]["retried"] + 2
    assert after[JOBS]["counters"]["delivered"] == before[JOBS]["counters"]["delivered"] + 3
    edge.process.wait_for_output(f"moved message {message_id} to dead letter queue {DLQ} after 3 failed attempts")


def test_ack_all_wins_over_a_throwing_handler(edge: Edge) -> None:
    name = tag()
    send_batch(edge, [{"body": {"tag": name, "action": "ack-all"}}, {"body": {"tag": name, "action": "throw"}}])
    [delivery] = advance(edge, 0)["deliveries"]
    assert delivery["outcome"] == "exception"
    assert delivery["acked"] == [m["id"] for m in delivery["messages"]]
    assert delivery["retried"] == []


def test_retry_all_retries_all_but_explicit_acks_with_its_delay(edge: Edge) -> None:
    name = tag()
    send_batch(edge, [{"body": {"tag": name, "action": "retry-all", "delay": 300, "until": 2}},
                      {"body": {"tag": name, "action": "ack"}},
                      {"body": {"tag": name}}])  # fmt: skip
    [delivery] = advance(edge, 0)["deliveries"]
    first, second, third = (m["id"] for m in delivery["messages"])
    assert delivery["outcome"] == "ok"
    assert delivery["acked"] == [second]
    assert delivery["retried"] == [{"id": first, "delaySeconds": 300}, {"id": third, "delaySeconds": 300}]
    assert advance(edge, 299)["deliveries"] == []
    [again] = advance(edge, 1)["deliveries"]
    assert again["acked"] == [first, third]


def test_send_batch_delivers_together_with_batch_and_message_delays(edge: Edge) -> None:
    name = tag()
    reply = send_batch(
        edge,
        [{"body": {"tag": name, "n": n}} for n in range(3)] + [{"body": {"tag": name, "n": 3}, "delaySeconds": 120}],
        delay=60,
    )
    assert reply == {"sent": 4}
    assert sorted(round(m["dueInSeconds"]) for m in pending(edge)) == [60, 60, 60, 120]
    assert advance(edge, 59)["deliveries"] == []
    [together] = advance(edge, 1)["deliveries"]
    assert len(together["messages"]) == 3
    [last] = advance(edge, 60)["deliveries"]
    assert len(last["messages"]) == 1
    records = seen(edge, name)
    assert [r["body"]["n"] for r in records] == [0, 1, 2, 3]
    assert records[0]["batch"] == records[1]["batch"] == records[2]["batch"] == [m["id"] for m in together["messages"]]


def test_batches_hold_at_most_max_batch_size_messages(edge: Edge) -> None:
    name = tag()
    send_batch(edge, [{"body": {"tag": name, "n": n}} for n in range(10)])
    # Full batches go at once, in real time, as on Cloudflare; advance sends the rest.
    advance(edge, 0)
    records = seen(edge, name)
    assert [r["body"]["n"] for r in records] == list(range(10))
    batches = [records[0]["batch"], records[4]["batch"], records[8]["batch"]]
    assert [len(b) for b in batches] == [4, 4, 2]  # max_batch_size = 4
    assert [r["batch"] for r in records] == [batches[0]] * 4 + [batches[1]] * 4 + [batches[2]] * 2


def test_wait_until_work_finishes_before_the_batch_is_judged(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name, "action": "wait"})
    [delivery] = advance(edge, 0)["deliveries"]
    assert delivery["outcome"] == "ok"
    # The waitUntil KV write (after a 0.2 s sleep) was done when advance answered.
    assert call(edge.url, f"/waited?tag={name}").json() == {"value": "1"}

    send(edge, {"tag": f"{name}-fail", "action": "wait-fail", "until": 2})
    [failed] = advance(edge, 0)["deliveries"]
    assert (failed["outcome"], failed["acked"], len(failed["retried"])) == ("exception", [], 1)
    assert failed["error"] == "ValueError: waitUntil work failed on purpose"
    assert advance(edge, 30)["deliveries"][0]["outcome"] == "ok"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("params", "raw", "message"),
    [
        ({"delay": 50000}, None,
         "Error: Queue send failed: message delay 50000 is invalid: delaySeconds must be an integer from 0 to 43200 (12 hours)"),
        ({"delay": -1}, None,
         "Error: Queue send failed: message delay -1 is invalid: delaySeconds must be an integer from 0 to 43200 (12 hours)"),
        ({"content_type": "xml"}, None, "TypeError: Unsupported queue message content type: xml"),
        ({"content_type": "text"}, None,
         'TypeError: Content Type "text" requires a value of type string, but received: object'),
        ({"content_type": "bytes", "kind": "text"}, b"text",
         'TypeError: Content Type "bytes" requires a value of type ArrayBufferView, but received: string'),
        ({"kind": "text", "content_type": "text"}, b"x" * 128_001,
         "Error: Queue send failed: message length of 128001 bytes exceeds limit of 128000"),
    ],
    ids=["delay-50000", "delay-negative", "content-type", "text-needs-str", "bytes-needs-buffer", "too-large"],
)  # fmt: skip
def test_invalid_sends_raise_in_python_and_enqueue_nothing(
    edge: Edge, params: dict[str, Any], raw: bytes | None, message: str
) -> None:
    before = state(edge)["queues"][JOBS]["counters"]["enqueued"]
    assert send(edge, {"tag": tag()}, raw=raw, **params) == {"error": message}
    assert state(edge)["queues"][JOBS]["counters"]["enqueued"] == before


def test_a_message_at_the_size_limit_is_accepted(edge: Edge) -> None:
    assert "error" not in send(edge, None, raw=b"y" * 128_000, kind="text", content_type="text")
    [message] = pending(edge)
    assert len(message["body"]) == 128_000


@pytest.mark.parametrize(
    ("messages", "params", "message"),
    [
        ([], {}, "TypeError: sendBatch() requires at least one message"),
        ([{"body": n} for n in range(101)], {},
         "Error: Queue sendBatch failed: batch message count of 101 exceeds limit of 100"),
        ([{"body": "z" * 100_000}] * 3, {},
         "Error: Queue sendBatch failed: batch size of 300006 bytes exceeds limit of 256000"),
        ([{"body": "z" * 128_000}], {},
         "Error: Queue sendBatch failed: message in batch has length 128002 bytes which exceeds single message size limit of 128000"),
        ([{"body": 1, "delaySeconds": 43201}], {},
         "Error: Queue sendBatch failed: message delay 43201 is invalid: delaySeconds must be an integer from 0 to 43200 (12 hours)"),
        ([{"body": 1}], {"delay": 50000},
         "Error: Queue sendBatch failed: message delay 50000 is invalid: delaySeconds must be an integer from 0 to 43200 (12 hours)"),
        ([{"body": 1, "contentType": "yaml"}], {}, "TypeError: Unsupported queue message content type: yaml"),
    ],
    ids=["empty", "101-messages", "300-kb", "one-too-large", "message-delay", "batch-delay", "content-type"],
)  # fmt: skip
def test_invalid_batches_raise_in_python_and_enqueue_nothing(
    edge: Edge, messages: list[dict[str, Any]], params: dict[str, Any], message: str
) -> None:
    before = state(edge)["queues"][JOBS]["counters"]["enqueued"]
    assert send_batch(edge, messages, **params) == {"error": message}
    assert state(edge)["queues"][JOBS]["counters"]["enqueued"] == before


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("POST", "/__local-edge/queues/advance?seconds=-1", 400, 'got "-1"'),
        ("POST", "/__local-edge/queues/advance?seconds=abc", 400, 'got "abc"'),
        ("POST", "/__local-edge/queues/advance?seconds=1e3", 400, 'got "1e3"'),
        ("POST", "/__local-edge/queues/advance", 400, "got nothing"),
        ("GET", "/__local-edge/queues/advance?seconds=1", 405, "answers POST"),
        ("POST", "/__local-edge/queues", 405, "answers GET"),
        ("GET", "/__local-edge/queues/purge", 404, "no such local-edge endpoint"),
    ],
)
def test_control_endpoints_reject_bad_input(edge: Edge, method: str, path: str, status: int, error: str) -> None:
    reply = call(edge.url, path, method=method)
    assert reply.status == status
    assert error in str(reply.json()["error"])


# ------------------------------------------------------------------ real time, restarts, config


def test_without_advance_messages_go_out_after_the_batch_timeout(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name}, queue="FAST")  # fixture-fast: max_batch_timeout = 1 s
    deadline = time.monotonic() + 15
    while not (records := seen(edge, name)):
        assert time.monotonic() < deadline, edge.process.output()
        time.sleep(0.1)
    [record] = records
    assert record["queue"] == FAST
    assert record["received"] - record["timestamp"] >= 0.95


def test_a_message_out_of_retries_without_dead_letter_queue_is_dropped(edge: Edge) -> None:
    name = tag()
    send(edge, {"tag": name, "action": "throw"}, queue="FAST")  # max_retries = 0, no dead_letter_queue
    edge.process.wait_for_output("(no dead_letter_queue)", timeout=15)
    [record] = seen(edge, name)
    fast = state(edge)["queues"][FAST]
    [dropped] = [d for d in fast["dropped"] if d["id"] == record["id"]]
    assert (dropped["attempts"], dropped["body"]) == (1, {"tag": name, "action": "throw"})
    assert fast["pending"] == []


def test_queue_contents_and_the_clock_persist_across_a_restart(worker_dir: Path, tmp_path: Path) -> None:
    name = tag()
    with start_edge(worker_dir, tmp_path) as first:
        send(first, {"tag": name, "n": 1}, delay=600)
        advance(first, 100)
        send(first, {"tag": name, "n": 2}, delay=60)
        assert seen(first, name) == []
    stored = json.loads((tmp_path / "queues" / f"{JOBS}.json").read_text())
    assert sorted(m["attempts"] for m in stored["messages"]) == [0, 0]

    with start_edge(worker_dir, tmp_path) as second:
        listed = state(second)
        assert listed["offsetSeconds"] > 99  # 100 s ahead of the real time when it advanced (a few ms ago)
        due = sorted(m["dueInSeconds"] for m in listed["queues"][JOBS]["pending"])
        assert 0 < due[0] <= 60 and 440 < due[1] <= 500
        advance(second, 500)
        assert sorted(r["body"]["n"] for r in seen(second, name)) == [1, 2]
        assert state(second)["queues"][JOBS]["pending"] == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[queues.consumers]]\nqueue = "q"\nmax_batch_size = 101\n',
         "[[queues.consumers]] q: max_batch_size must be an integer from 1 to 100, got 101"),
        ('[[queues.consumers]]\nqueue = "q"\nmax_retries = -1\n',
         "[[queues.consumers]] q: max_retries must be an integer from 0 to 100, got -1"),
        ('[[queues.consumers]]\nqueue = "q"\ndead_letter_queue = "q"\n',
         "dead_letter_queue cannot be the queue itself"),
        ('[[queues.producers]]\nbinding = "Q"\nqueue = "bad name"\n', 'queue name "bad name" must be'),
        ('[[queues.producers]]\nbinding = "Q"\nqueue = "q"\ndelivery_delay = 50000\n',
         "delivery_delay must be an integer from 0 to 43200, got 50000"),
    ],
    ids=["batch-size", "retries", "dlq-itself", "queue-name", "delivery-delay"],
)  # fmt: skip
def test_bad_queue_config_stops_startup_with_a_message(tmp_path: Path, toml: str, message: str) -> None:
    target = tmp_path / "worker"
    shutil.copytree(FIXTURE, target)
    config = target / "wrangler.toml"
    config.write_text(config.read_text().split("[[queues.producers]]")[0] + toml)
    cmd = ["node", str(SERVER), "--config", str(config), "--port", str(free_port()),
           "--site-packages", str(SITE_PACKAGES), "--persist-to", str(tmp_path / "state")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr


def test_a_state_file_that_is_not_json_stops_startup(worker_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "queues").mkdir()
    (tmp_path / "queues" / f"{JOBS}.json").write_text("{not json")
    cmd = ["node", str(SERVER), "--config", str(worker_dir / "wrangler.toml"), "--port", str(free_port()),
           "--site-packages", str(SITE_PACKAGES), "--persist-to", str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{JOBS}.json is not a queue state file" in result.stderr
    assert (tmp_path / "queues" / f"{JOBS}.json").read_text() == "{not json"  # left for the user


def test_a_worker_without_a_queue_method_fails_every_batch(tmp_path: Path) -> None:
    target = tmp_path / "worker"
    shutil.copytree(FIXTURE, target)
    entry = target / "src" / "entry.py"
    entry.write_text(entry.read_text().replace("async def queue(self, batch):", "async def not_a_queue(self, batch):"))
    with start_edge(target, tmp_path / "state") as edge:
        send(edge, {"tag": "orphan"})
        [delivery] = advance(edge, 0)["deliveries"]
        assert delivery["outcome"] == "exception"
        assert delivery["error"] == "TypeError: Handler does not export a queue() function."
        assert len(delivery["retried"]) == 1
