"""Scan history on SQLite and on a real PostgreSQL server, and the `synthscan history` command.

The PostgreSQL case runs when SYNTHSCAN_TEST_POSTGRES_URL names a server (.ci/run starts a
throwaway cluster on loopback and sets it); its tables are dropped first.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from synthscan.cli.main import app
from synthscan.serve.history import History

POSTGRES_URL = os.environ.get("SYNTHSCAN_TEST_POSTGRES_URL")


def record(sha: str, verdict: str, p: float, model: str = "m", version: str = "1", explanation=None) -> dict:
    r = {"path": "x.png", "status": "ok", "sha256": sha, "verdict": verdict, "p_fake": p, "model": model,
         "model_version": version, "threshold": 0.5}
    return r | ({"explanation": explanation} if explanation else {})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'history.db'}"
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set SYNTHSCAN_TEST_POSTGRES_URL=postgresql://USER@127.0.0.1:PORT/DB "
                    "(.ci/run starts one)")
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS scans, alembic_version"))
    engine.dispose()
    return POSTGRES_URL


def test_history_roundtrip(database_url):
    store = History(database_url)
    try:
        assert {"scans", "alembic_version"} <= set(inspect(store.engine).get_table_names())
        a = store.add(record("a" * 64, "real", 0.1), filename="a.png", image=b"bytes")
        b = store.add(record("b" * 64, "ai-generated", 0.9), filename="b.png")
        c = store.add(record("a" * 64, "real", 0.12, explanation={"maps": []}), filename="a2.png")
        store.add(record("a" * 64, "uncertain", 0.5, version="2"), filename="a.png")

        assert store.find("a" * 64, "m", "1", explained=False).id == c.id  # the latest
        assert store.find("a" * 64, "m", "1", explained=True).id == c.id
        assert store.find("b" * 64, "m", "1", explained=True) is None  # never explained
        assert store.find("c" * 64, "m", "1", explained=False) is None

        page = store.list()
        assert page.total == 4 and [r.id for r in page.items][:2] == [c.id + 1, c.id]
        assert store.list(verdict="real").total == 2
        assert store.list(sha256="B" * 64).items[0].id == b.id
        assert [r.id for r in store.list(limit=1, offset=3).items] == [a.id]
        now = datetime.now(timezone.utc)
        assert store.list(since=now - timedelta(minutes=5)).total == 4
        assert store.list(until=now - timedelta(minutes=5)).total == 0

        got = store.get(a.id)
        assert got.result["sha256"] == "a" * 64
        assert store.image(a.id) == b"bytes" and store.image(b.id) is None
        summary = got.summary()
        assert summary["filename"] == "a.png" and datetime.fromisoformat(summary["created_at"]).tzinfo is not None
        assert store.get(10_000) is None
    finally:
        store.close()
    History(database_url).close()  # migrating again is a no-op


def test_history_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = History(url)
    store.add(record("a" * 64, "real", 0.1), filename="a.png")
    store.add(record("b" * 64, "ai-generated", 0.9), filename="b.png")
    store.close()
    runner = CliRunner()
    table = runner.invoke(app, ["history", "--database", url])
    assert table.exit_code == 0, table.output
    assert "a.png" in table.output and "b.png" in table.output and "2 of 2 scan(s)" in table.output
    lines = runner.invoke(app, ["history", "--database", url, "--verdict", "ai-generated", "--format", "jsonl"]).output
    rows = [json.loads(line) for line in lines.splitlines()]
    assert [r["filename"] for r in rows] == ["b.png"] and rows[0]["result"]["p_fake"] == 0.9
    assert runner.invoke(app, ["history", "--database", url, "--verdict", "fake"]).exit_code == 2
    broken = runner.invoke(app, ["history", "--database", "postgresql://nobody@127.0.0.1:1/none"])
    assert broken.exit_code == 2 and "cannot read the history" in broken.output
