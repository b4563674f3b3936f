"""The Worker's vars checked before an engine is built (settings.py)."""

from __future__ import annotations

import pytest

from nudge.settings import ConfigError, Settings, followups_problem, settings_from, whole_number

BASE = {"NUDGE_SECRET": "s3cret"}


def test_defaults_with_only_a_secret() -> None:
    s = settings_from(BASE)
    assert s.secrets == [b"s3cret"] and s.consent.mode == "none"
    assert s.edge_cart and not s.shadow and s.explain_token == "" and s.shop_secret is None
    assert s.webhook_url == "" and s.webhook_secret == ""


def test_switches_and_secrets_are_read() -> None:
    s = settings_from({**BASE, "NUDGE_EDGE_CART": "off", "NUDGE_SHADOW": "on", "NUDGE_SHOP_SECRET": "shop",
                       "NUDGE_EXPLAIN_TOKEN": "qa", "NUDGE_CONSENT": "gpc"})
    assert not s.edge_cart and s.shadow and s.shop_secret == b"shop" and s.explain_token == "qa"
    assert s.consent.mode == "gpc"


@pytest.mark.parametrize(("values", "message"), [
    ({}, "NUDGE_SECRET is not set"),
    ({"NUDGE_SECRET": " , "}, "NUDGE_SECRET is not set"),  # no usable secret in the list
    ({**BASE, "NUDGE_CONSENT": "maybe"}, "NUDGE_CONSENT:"),
    ({**BASE, "NUDGE_EDGE_CART": "yes"}, "NUDGE_EDGE_CART must be 'on' or 'off', not 'yes'"),
    ({**BASE, "NUDGE_SHADOW": "1"}, "NUDGE_SHADOW must be 'on' or 'off', not '1'"),
])
def test_a_worker_without_what_it_needs_is_refused_with_the_reason(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        settings_from(values)


def webhook(url: str, secret: str = "w") -> Settings:
    return settings_from({**BASE, "NUDGE_WEBHOOK_URL": url, "NUDGE_WEBHOOK_SECRET": secret})


def test_follow_ups_need_a_usable_url_its_secret_and_the_queue() -> None:
    assert followups_problem(settings_from(BASE), has_queue=False) is None  # no URL: off, and no problem
    assert followups_problem(webhook("https://hooks.example/n"), has_queue=True) is None
    assert "https://" in (followups_problem(webhook("http://hooks.example/n"), has_queue=True) or "")
    assert followups_problem(webhook("https://hooks.example/n", ""), True) == "NUDGE_WEBHOOK_SECRET is not set"
    assert "NUDGE_FOLLOWUPS" in (followups_problem(webhook("https://hooks.example/n"), has_queue=False) or "")


@pytest.mark.parametrize(("raw", "expected"), [
    ("", 30), ("abc", 30), ("-5", 30), ("0", 30), ("1", 1), ("3600", 3600), ("3601", 30), (" 5", 30),
])
def test_whole_numbers_outside_their_bounds_get_the_default(raw: str, expected: int) -> None:
    assert whole_number(raw, 1, 3600, 30) == expected
