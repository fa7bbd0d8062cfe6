"""DAP's own tables: query jobs, the objects they wrote, and those objects' bytes when the
database is where objects are kept (``LMSAUTH_DAP_OBJECT_STORE``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core.db import Base, UTCDateTime


class DapJob(Base):
    """One query (spec B4) and how far its work has come (B5).

    ``request_key`` names the query's parameters, so the same query while a job for it is live
    returns that job. The ``claim`` and ``lease_until`` say which worker runs it and until when
    it must show progress; ``cursor`` is the last key written into a finished object, so a job
    taken over after a restart goes on from there.
    """

    __tablename__ = "dap_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    request_key: Mapped[str] = mapped_column(String(64), index=True)
    namespace: Mapped[str] = mapped_column(String(64))
    table_name: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when the work starts: a snapshot's ``at``, an incremental's resolved ``until``.
    at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_uuid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)


class DapObject(Base):
    """A finished output file of a job: ``<job id>/part-00000.tsv.gz`` (the name the replicator
    keeps, spec B7). Written only once the file is complete."""

    __tablename__ = "dap_objects"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("dap_jobs.id", ondelete="CASCADE"), index=True)
    part: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)


class DapObjectChunk(Base):
    """A piece (up to ``CHUNK_BYTES``) of an object's gzip bytes, for the database store."""

    __tablename__ = "dap_object_chunks"

    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
