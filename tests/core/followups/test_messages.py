"""Follow-up queue messages: anything nudge did not write is refused (followups/messages.py)."""

from __future__ import annotations

import pytest

from nudge.followups.messages import FollowUp, MessageError


@pytest.mark.parametrize("text", ["", "{}", "[]", '{"v": 2}', '{"v": 1, "event": "x"}', "not json", b"\xff",
                                  '{"v":1,"event":"e","rule":"r","visitor":"v","action":"abandoned_cart","due":1,'
                                  '"queued":1,"site":"s","items":[],"category":null}'])
def test_messages_nudge_did_not_write_are_refused(text: str | bytes) -> None:
    with pytest.raises(MessageError):
        FollowUp.from_json(text)
