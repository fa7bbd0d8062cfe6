"""Where a job's output files live, and the signed, expiring URLs that serve them (spec B2 rows
5 and 6, B7).

Two stores, one interface (``LMSAUTH_DAP_OBJECT_STORE``):

- ``files``: a folder in the data folder (the embedded default, one machine);
- ``database``: the files' bytes in the database, in chunks of ``CHUNK_BYTES``, so that every
  instance over one PostgreSQL can serve every object (the default with PostgreSQL).

Objects are written once, by one claim of one job (the object id carries the attempt), and
read in pieces, so memory stays bounded whatever their size.

A URL is ``/dap/files/<object id>?expires=<unix time>&signature=<HMAC-SHA256>``, the MAC over
the object id and the expiry under a key derived from ``LMSAUTH_SECRET_KEY``: like an S3
pre-signed URL it needs no ``Authorization`` (the dap client sends none), and any instance
that shares the secret key can check it. ``hmac`` from the stdlib; no URL-signing library adds
anything over these few lines.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

from sqlalchemy import delete, select

from lmsauth.core.db import Database
from lmsauth.core.secrets import same
from lmsauth.dap.models import DapObjectChunk

CHUNK_BYTES = 1 << 20
READ_BYTES = 1 << 16


class ObjectWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> int:
        """Make the object readable; return its size in bytes."""
        ...


class ObjectStore(Protocol):
    async def writer(self, object_id: str) -> ObjectWriter: ...

    def read(self, object_id: str) -> AsyncIterator[bytes]:
        """The object's bytes in pieces; raises ``FileNotFoundError`` before the first piece
        when there is no such object."""
        ...

    async def remove_job(self, job_id: str) -> None: ...


class _FileWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.partial.open("wb")
        self.size = 0

    async def write(self, data: bytes) -> None:
        if data:
            await asyncio.to_thread(self.file.write, data)
            self.size += len(data)

    async def finish(self) -> int:
        self.file.close()
        os.replace(self.partial, self.path)
        return self.size


class FileStore:
    """Objects as files under ``root``: ``<root>/<job id>/<file name>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, object_id: str) -> Path:
        path = (self.root / object_id).resolve()
        if self.root.resolve() not in path.parents:
            raise FileNotFoundError(object_id)
        return path

    async def writer(self, object_id: str) -> ObjectWriter:
        return _FileWriter(self._path(object_id))

    async def read(self, object_id: str) -> AsyncIterator[bytes]:
        path = self._path(object_id)
        with path.open("rb") as file:
            while piece := await asyncio.to_thread(file.read, READ_BYTES):
                yield piece

    async def remove_job(self, job_id: str) -> None:
        folder = self._path(job_id)
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


class _ChunkWriter:
    def __init__(self, db: Database, object_id: str) -> None:
        self.db = db
        self.object_id = object_id
        self.buffer = bytearray()
        self.seq = 0
        self.size = 0

    async def _flush(self) -> None:
        data, self.buffer = bytes(self.buffer), bytearray()
        async with self.db.session(write=True) as session:
            session.add(DapObjectChunk(object_id=self.object_id, seq=self.seq, data=data))
        self.seq += 1

    async def write(self, data: bytes) -> None:
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= CHUNK_BYTES:
            await self._flush()

    async def finish(self) -> int:
        if self.buffer or self.seq == 0:
            await self._flush()
        return self.size


class DatabaseStore:
    """Objects as rows of ``dap_object_chunks``: every instance reaches them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def writer(self, object_id: str) -> ObjectWriter:
        async with self.db.session(write=True) as session:
            await session.execute(delete(DapObjectChunk).where(DapObjectChunk.object_id == object_id))
        return _ChunkWriter(self.db, object_id)

    async def read(self, object_id: str) -> AsyncIterator[bytes]:
        async with self.db.session() as session:
            seqs = list(
                await session.scalars(
                    select(DapObjectChunk.seq)
                    .where(DapObjectChunk.object_id == object_id)
                    .order_by(DapObjectChunk.seq)
                )
            )
        if not seqs:
            raise FileNotFoundError(object_id)
        for seq in seqs:
            async with self.db.session() as session:
                data = await session.scalar(
                    select(DapObjectChunk.data).where(
                        DapObjectChunk.object_id == object_id, DapObjectChunk.seq == seq
                    )
                )
            if data is None:
                raise FileNotFoundError(object_id)
            yield data

    async def remove_job(self, job_id: str) -> None:
        async with self.db.session(write=True) as session:
            await session.execute(
                delete(DapObjectChunk).where(DapObjectChunk.object_id.startswith(job_id + "/"))
            )


def create_object_store(kind: str, db: Database, data_dir: Path) -> ObjectStore:
    """``auto``: files with SQLite (one machine), the database otherwise (every instance)."""
    if kind == "auto":
        kind = "files" if db.is_sqlite else "database"
    if kind == "files":
        return FileStore(data_dir / "dap-objects")
    if kind == "database":
        return DatabaseStore(db)
    raise ValueError(f"unknown DAP object store {kind!r}")


def _url_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"lmsauth dap object url\x00" + secret_key.encode()).digest()


def url_signature(secret_key: str, object_id: str, expires: int) -> str:
    mac = hmac.new(_url_key(secret_key), f"{object_id}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_url(public_url: str, secret_key: str, object_id: str, expires: int) -> str:
    query = urlencode({"expires": expires, "signature": url_signature(secret_key, object_id, expires)})
    return f"{public_url.rstrip('/')}/dap/files/{quote(object_id)}?{query}"


def signature_valid(secret_key: str, object_id: str, expires: int, signature: str) -> bool:
    """In constant time, whatever characters ``signature`` holds (``core.secrets.same``)."""
    return same(url_signature(secret_key, object_id, expires), signature)
