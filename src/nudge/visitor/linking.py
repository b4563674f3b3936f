"""Linking a browser to the shop's customer: the first device seen for a customer owns the link
(KV: identity hash -> visitor id); later devices adopt its visitor id, so every device shares one
profile. The runtime does the KV reads and writes; these decide what they mean.
"""

from __future__ import annotations

import dataclasses

from nudge.visitor.identity import short
from nudge.visitor.profile import Profile
from nudge.visitor.session import Session


def already_linked(session: Session, hashed: str) -> bool:
    """The session already notes this customer's link: no KV lookup is needed."""
    return session.identity == short(hashed)


def adopt_link(session: Session, hashed: str, owner: bytes | None) -> bool:
    """Notes the link in the session, given the owner KV holds for the customer (None: nobody
    yet). A browser that is not the owner adopts the owner's visitor id (an unreadable owner
    leaves the session unlinked). True when nobody owns the link: this browser becomes the owner,
    and the link must be written."""
    owner_id = owner.decode("ascii", "replace") if owner else None
    session.identity = short(hashed)
    if owner_id and len(owner_id) == 16 and owner_id != session.visitor_id:
        try:
            session.visitor = bytes.fromhex(owner_id)
        except ValueError:
            session.identity = None
    return not owner_id


def owns_link(owner: bytes | None, visitor: str) -> bool:
    """Whether the link KV holds belongs to this visitor (only then does forgetting erase it)."""
    return owner is not None and owner.decode("ascii", "replace") == visitor


def with_link(profile: Profile, linked: str | None) -> Profile:
    """The profile to write, recording the identity link (a hash) when one was just made."""
    return dataclasses.replace(profile, identity=linked) if linked else profile
