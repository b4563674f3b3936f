"""The shape of nudge's own answers (nudge.reply)."""

from __future__ import annotations

import json

from nudge.reply import Reply, json_reply, redirect


def test_a_redirect_is_a_no_store_303_with_its_cookies_in_order() -> None:
    assert redirect("/cart", "a=1", "b=2") == Reply(303, "", "text/plain", [
        ("Location", "/cart"), ("Cache-Control", "no-store"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert redirect("/").headers == [("Location", "/"), ("Cache-Control", "no-store")]


def test_a_json_reply_carries_its_headers() -> None:
    reply = json_reply(405, {"error": "use POST"}, [("Allow", "POST")])
    assert (reply.status, reply.content_type, reply.headers) == (405, "application/json", [("Allow", "POST")])
    assert json.loads(reply.body) == {"error": "use POST"}
    assert json_reply(200, []).headers == []
