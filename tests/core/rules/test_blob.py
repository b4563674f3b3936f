from __future__ import annotations

import msgpack
import pytest

from nudge.kv_keys import blob_key
from nudge.rules.blob import compile_blob, load_blob, rules_version
from nudge.rules.load import RuleError
from nudge.signing import BadData
from tests.core.factories import NOW, repo_rule_files


def test_compile_and_load_round_trip() -> None:
    files = repo_rule_files()
    version, blob = compile_blob(files, NOW)
    assert version == rules_version(files) and blob_key(version) == f"rules:{version}"
    loaded_version, ruleset = load_blob(blob)
    assert loaded_version == version and ruleset.rule("sneakers-exit-intent") is not None


def test_version_changes_with_any_file() -> None:
    files = repo_rule_files()
    changed = {**files, "pages.toml": files["pages.toml"] + "\n# comment\n"}
    assert rules_version(files) != rules_version(changed)
    assert rules_version(files) == rules_version(dict(reversed(list(files.items()))))


def test_invalid_rules_are_not_compiled() -> None:
    with pytest.raises(RuleError):
        compile_blob({**repo_rule_files(), "bad.toml": "id = 5"}, NOW)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\xc1", msgpack.packb([2, "v", 0, {}]), msgpack.packb([1, "v", 0, {"a": 1}]),
     msgpack.packb([1, "not-the-hash", 0, {"pages.toml": "x"}]), msgpack.packb("x")],
)
def test_corrupt_blobs_are_bad_data(blob: bytes) -> None:
    with pytest.raises(BadData):
        load_blob(blob)


def test_blob_with_matching_hash_but_invalid_rules_is_rule_error() -> None:
    files = {"pages.toml": "x = ["}
    blob = msgpack.packb([1, rules_version(files), 0, files])
    with pytest.raises(RuleError):
        load_blob(blob)
