"""``benchmarks/wal_pages.py`` names the pages each grant writes on SQLite, and through it two
choices that keep those pages few are checked: a code exchange writes no entry of the partial
``family_id`` index, and a confidential client's refresh leaves its refresh token's unique index
alone (its statement does not set the column)."""

from __future__ import annotations

import pytest

from benchmarks import wal_pages


@pytest.mark.bench
def test_each_grant_names_its_pages_and_skips_the_indexes_it_does_not_change() -> None:
    found = wal_pages.main(40, 0)
    code, refresh = found["s4_code"], found["s5_refresh"]
    assert isinstance(code, dict) and isinstance(refresh, dict)
    written = set(code["by_table_or_index"])
    assert {"access_tokens", "authorization_codes", "export_changes_pending"} <= written
    assert any(name.endswith("(token_digest)") for name in written), written
    assert any(name.endswith("(refresh_digest)") for name in written), written
    assert "ix_access_tokens_family_id" not in written
    assert 5 <= code["pages_per_grant"] < 20
    refreshed = set(refresh["by_table_or_index"])
    assert "access_tokens" in refreshed
    assert any(name.endswith("(token_digest)") for name in refreshed), refreshed
    assert not any(name.endswith("(refresh_digest)") for name in refreshed), refreshed
    assert 2 <= refresh["pages_per_grant"] < code["pages_per_grant"]
