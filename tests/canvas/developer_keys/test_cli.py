"""``lmsauth developer-key create`` (now in ``canvas/keys/commands.py``) keeps turning the key
on at once, unlike the API, and keeps its secret sealed so that admins can read it back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lmsauth.canvas.keys import service
from lmsauth.canvas.models import DeveloperKey
from lmsauth.settings import Settings
from tests.core.test_cli import lmsauth, one_json_object, stored


def test_create_turns_the_key_on_and_seals_its_secret(tmp_path: Path) -> None:
    created = one_json_object(
        lmsauth(
            tmp_path,
            "developer-key",
            "create",
            "--name",
            "CLI",
            "--redirect-uri",
            "https://a.example/cb",
            "--json",
        )
    )
    assert created["binding_state"] == "on"
    ((row,),) = stored(tmp_path, select(DeveloperKey))
    assert row.secret_sealed and created["client_secret"] not in row.secret_sealed
    assert service.api_key(row, Settings(data_dir=tmp_path).resolved_secret_key) == created["client_secret"]
    # Under another server key the secret cannot be read back, and the API shows null.
    assert service.api_key(row, "some other server key") is None
