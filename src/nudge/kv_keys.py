"""Every key nudge stores under, with how long it lives: one place to see what KV holds.

Workers KV (the NUDGE_KV binding), one family per line of this table:

    profile:<visitor>            the long-term profile (visitor/profile.py)      PROFILE_TTL (NUDGE_PROFILE_TTL_DAYS)
    identity:<keyed hash>        customer id -> visitor id (visitor/identity.py) as long as profiles
    product:<slug>               product facts learned from pages                CATALOG_TTL
    order:<keyed hash>           an order id already counted (purchases.py)      no expiry: an order counts once, ever
    followup:<visitor>:<rule>    a rule's pending follow-up (followups/)         as long as profiles
    contact:<visitor>            the customer's own id, for follow-ups only      CONTACT_TTL
    code:<CODE>                  a follow-up's single-use offer code             until the code expires (at least 60 s)
    rules:current, rules:<ver>   the published rule set and its pointer          no expiry (`nudge rules publish`)

The redemption ledger is a Durable Object, not KV, but its names and row keys are key families of
the same kind, so they are here too: one object per rule (`ledger_name`), rows keyed by a visitor's
keyed hash (`visitor_key`, kept KEEP_VISITOR) or by a follow-up code (`code_ledger_key`).
Keys built from a shop's or shopper's identifiers are keyed hashes (HMAC with the Worker's secret):
KV and the ledger never hold a customer id or an order id in the clear.
"""

from __future__ import annotations

import hashlib
import hmac

DAY = 86_400
PROFILE_TTL = 400 * DAY  # the default of NUDGE_PROFILE_TTL_DAYS; identity links and pending follow-ups too
CATALOG_TTL = 30 * DAY
CONTACT_TTL = 30 * DAY  # how long a customer id stays known for follow-ups after a login
KEEP_VISITOR = 30 * DAY  # how long the ledger remembers a visitor's redemption of a rule
POINTER_KEY = "rules:current"


def profile_key(visitor_id: str) -> str:
    return f"profile:{visitor_id}"


def identity_key(hashed: str) -> str:
    """`hashed` is visitor/identity.py's keyed hash of the customer id, never the id."""
    return f"identity:{hashed}"


def product_key(slug: str) -> str:
    return f"product:{slug}"


def order_key(secret: bytes, order_id: str) -> str:
    """The KV key that marks an order id as counted (a keyed hash: order ids are the shop's)."""
    key = hmac.new(secret, b"nudge/order", hashlib.sha256).digest()
    return "order:" + hmac.new(key, order_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pending_key(visitor: str, rule_id: str) -> str:
    return f"followup:{visitor}:{rule_id}"


def pending_prefix(visitor: str) -> str:
    """Every pending follow-up of a visitor (listed by /_nudge/forget)."""
    return f"followup:{visitor}:"


def contact_key(visitor: str) -> str:
    """The logged-in customer's own id, kept only for follow-ups (erased by forget)."""
    return f"contact:{visitor}"


def code_key(code: str) -> str:
    return f"code:{code}"


def blob_key(version: str) -> str:
    """A published rule set (`rules:current` names the live one)."""
    return f"rules:{version}"


def ledger_name(rule_id: str) -> str:
    """The Durable Object's name for a rule's ledger (`idFromName`)."""
    return f"rule:{rule_id}"


def visitor_key(secret: bytes, visitor: str) -> str:
    """A button token's ledger key: the visitor, as a keyed hash (the ledger never holds the id).
    Keyed by visitor, not by token: a visitor redeems a rule's offer once, whichever of its
    tokens (each page mints one) comes back."""
    return "v:" + hmac.new(secret, b"nudge/ledger/" + visitor.encode(), hashlib.sha256).hexdigest()[:32]


def code_ledger_key(code: str) -> str:
    """A follow-up code's ledger key (good in any browser, once)."""
    return "c:" + code
