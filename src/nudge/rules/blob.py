"""Published rule sets: one versioned msgpack blob in KV, and the pointer naming the live one.

`nudge rules publish` validates rules/ with the Worker's own loader, writes the blob under
`rules:<version>` and then moves `rules:current` to it, so a Worker never sees a pointer to a blob
that is not there. The version is a hash of the files: publishing unchanged rules is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgpack

from nudge.rules.load import load_ruleset
from nudge.rules.model import RuleSet
from nudge.signing import BadData

BLOB_FORMAT = 1


def rules_version(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def compile_blob(files: Mapping[str, str], now: int) -> tuple[str, bytes]:
    """(version, blob) for a rule set; raises RuleError (nothing to publish) when it is invalid."""
    load_ruleset(files)
    version = rules_version(files)
    blob: bytes = msgpack.packb([BLOB_FORMAT, version, now, dict(sorted(files.items()))])
    return version, blob


def load_blob(data: bytes) -> tuple[str, RuleSet]:
    """(version, rule set) from a published blob; raises BadData or RuleError when it is unusable."""
    try:
        fmt, version, _published, files = msgpack.unpackb(data)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BadData("rules blob is not a nudge rule set") from exc
    if fmt != BLOB_FORMAT or not isinstance(version, str) or not isinstance(files, dict):
        raise BadData("rules blob has an unknown format")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise BadData("rules blob holds non-text files")
    if rules_version(files) != version:
        raise BadData("rules blob does not match its version")
    return version, load_ruleset(files)
