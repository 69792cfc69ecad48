"""Scan history in a SQL database (SQLite by default, PostgreSQL by URL) via SQLAlchemy.

One row per scanned image: its sha256, when, which model (name and version), the verdict,
p_fake, and the whole result record as JSON (evidence included when it was explained). The
image bytes are kept only when the service was told to (`store_images`). The schema is created
and upgraded by the Alembic migrations shipped in `synthscan/serve/migrations`.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, LargeBinary, String, create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class ScanRecord(Base):
    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(200), index=True)
    model_version: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(20), index=True)
    p_fake: Mapped[float] = mapped_column(Float)
    explained: Mapped[bool] = mapped_column(default=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": _utc(self.created_at).isoformat(),
            "sha256": self.sha256,
            "filename": self.filename,
            "model": self.model,
            "model_version": self.model_version,
            "verdict": self.verdict,
            "p_fake": self.p_fake,
            "explained": self.explained,
        }


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # SQLite drops the zone


@dataclass
class Page:
    total: int
    items: list[ScanRecord]


def _sqlite_wal(connection, _) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: no fsync per commit, still never corrupt
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest migration (creates it on first use)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("synthscan.serve") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class History:
    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if parsed.drivername == "postgresql":  # psycopg 3 is the maintained driver
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        sqlite = parsed.get_backend_name() == "sqlite"
        # SQLite allows one writer at a time: writes take a lock here instead of failing with
        # "database is locked" under load, and WAL lets readers go on while one writes.
        self._write_lock = threading.Lock() if sqlite else contextlib.nullcontext()
        self.engine = create_engine(parsed, pool_pre_ping=True, connect_args={"timeout": 30} if sqlite else {})
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_wal)
        if migrate_schema:
            migrate(self.engine)

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def add(self, result: dict[str, Any], *, filename: str, image: bytes | None = None) -> ScanRecord:
        record = ScanRecord(
            created_at=datetime.now(timezone.utc),
            sha256=result["sha256"],
            filename=filename[:255],
            model=result["model"],
            model_version=result["model_version"],
            verdict=result["verdict"],
            p_fake=result["p_fake"],
            explained=result.get("explanation") is not None,
            result=result,
            image=image,
        )
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            session.add(record)
            session.commit()
        return record

    def find(self, sha256: str, model: str, model_version: str, *, explained: bool) -> ScanRecord | None:
        """The latest record of this image with this model version (one with evidence if asked)."""
        query = select(ScanRecord).where(
            ScanRecord.sha256 == sha256, ScanRecord.model == model, ScanRecord.model_version == model_version
        )
        if explained:
            query = query.where(ScanRecord.explained.is_(True))
        with Session(self.engine) as session:
            return session.scalars(query.order_by(ScanRecord.id.desc()).limit(1)).first()

    def get(self, scan_id: int) -> ScanRecord | None:
        with Session(self.engine) as session:
            return session.get(ScanRecord, scan_id)

    def image(self, scan_id: int) -> bytes | None:
        """The uploaded bytes, when the service keeps them (`store_images`)."""
        with Session(self.engine) as session:
            return session.scalar(select(ScanRecord.image).where(ScanRecord.id == scan_id))

    def list(self, *, verdict: str | None = None, model: str | None = None, sha256: str | None = None,
             since: datetime | None = None, until: datetime | None = None, limit: int = 50,
             offset: int = 0) -> Page:
        """Newest first, filtered; `total` counts every match, `items` is one page of them."""
        conditions = []
        if verdict:
            conditions.append(ScanRecord.verdict == verdict)
        if model:
            conditions.append(ScanRecord.model == model)
        if sha256:
            conditions.append(ScanRecord.sha256 == sha256.lower())
        if since:
            conditions.append(ScanRecord.created_at >= since)
        if until:
            conditions.append(ScanRecord.created_at < until)
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(ScanRecord).where(*conditions))
            items = session.scalars(
                select(ScanRecord).where(*conditions).order_by(ScanRecord.id.desc()).limit(limit).offset(offset)
            ).all()
        return Page(total=total or 0, items=list(items))

    def close(self) -> None:
        self.engine.dispose()
