"""`synthscan.output.ResultWriter`: atomic output files, crash-safe partial files, resume."""

from __future__ import annotations

import csv
import json

import pytest

from synthscan.output import CSV_FIELDS, ResultWriter, format_from_suffix, read_records, result_record
from synthscan.result import Notice, ScanResult, Tile


def ok(path: str, p: float = 0.25) -> ScanResult:
    return ScanResult(
        path=path, sha256="ab" * 32, width=80, height=60, format="PNG", p_fake=p, verdict="real",
        threshold=0.5, model="m", model_version="1", tiles=2, seconds=0.01,
        warnings=[Notice(code="padded", message="padded")],
        tile_scores=[Tile(box=(0, 0, 64, 60), p_fake=p), Tile(box=(16, 0, 80, 60), p_fake=p)],
    )


def failed(path: str) -> ScanResult:
    return ScanResult(path=path, status="error", error=Notice(code="not-found", message="no such file"))


RESULTS = [ok("a.png", 0.1), failed("b.jpg"), ok("c.png", 0.9)]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_format_from_suffix(tmp_path):
    assert format_from_suffix(tmp_path / "x.JSON") == "json"
    assert format_from_suffix(tmp_path / "x.ndjson") == "jsonl"
    assert format_from_suffix(tmp_path / "x.csv") == "csv"
    assert format_from_suffix(tmp_path / "x.txt") is None


def test_table_format_cannot_be_written():
    with pytest.raises(ValueError, match="table"):
        ResultWriter("x.txt", "table")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_final_file_appears_only_on_close(tmp_path, fmt):
    out = tmp_path / "sub" / f"results.{fmt}"
    writer = ResultWriter(out, fmt)
    partial = tmp_path / "sub" / f"results.{fmt}.partial.jsonl"
    assert writer.partial == partial
    for r in RESULTS:
        writer.write(r)
        assert not out.exists()
    # Every result is flushed to the partial file as soon as it is written.
    assert [json.loads(line)["path"] for line in partial.read_text().splitlines()] == ["a.png", "b.jpg", "c.png"]
    writer.close()
    assert out.exists() and not partial.exists()
    assert leftovers(out.parent) == [out.name]  # no temporary file either
    records = list(read_records(out))
    assert [r["path"] for r in records] == ["a.png", "b.jpg", "c.png"]
    if fmt == "csv":
        with out.open(newline="") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == CSV_FIELDS
        assert records[1]["error_code"] == "not-found" and records[0]["warnings"] == "padded"
        assert float(records[2]["p_fake"]) == 0.9
    else:
        assert records == [result_record(r) for r in RESULTS]
        assert ScanResult.model_validate(records[0]) == RESULTS[0]  # lossless round trip
    if fmt == "json":
        assert isinstance(json.loads(out.read_text()), list)


def test_exception_keeps_partial_and_no_final_file(tmp_path):
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        with ResultWriter(out, "json") as writer:
            writer.write(RESULTS[0])
            writer.write(RESULTS[1])
            raise RuntimeError("crash")
    assert not out.exists()
    partial = tmp_path / "r.json.partial.jsonl"
    assert [r["path"] for r in read_records(partial)] == ["a.png", "b.jpg"]


def test_context_manager_closes_on_success(tmp_path):
    out = tmp_path / "r.jsonl"
    with ResultWriter(out, "jsonl") as writer:
        writer.write(RESULTS[0])
    assert out.exists() and leftovers(tmp_path) == ["r.jsonl"]


def test_an_existing_output_is_replaced_without_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(result_record(ok("old.png"))) + "\n")
    writer = ResultWriter(out, "jsonl")
    assert writer.done == set()
    writer.write(RESULTS[0])
    writer.close()
    assert [r["path"] for r in read_records(out)] == ["a.png"]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_resume_from_a_finished_output(tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    with ResultWriter(out, fmt) as writer:
        for r in RESULTS[:2]:
            writer.write(r)
    first = list(read_records(out))

    writer = ResultWriter(out, fmt, resume=True)
    assert writer.done == {"a.png"}  # b.jpg failed before: it is tried again
    writer.write(RESULTS[2])
    writer.close()
    records = list(read_records(out))
    assert [r["path"] for r in records] == ["a.png", "c.png"]
    assert records[0] == first[0]  # earlier results kept as they were
    assert not writer.partial.exists()


def test_resume_from_a_leftover_partial_with_a_truncated_last_line(tmp_path):
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    lines = [json.dumps(result_record(r)) for r in RESULTS[:2]]
    cut = json.dumps(result_record(RESULTS[2]))[:40]  # a crash mid-write
    partial.write_text("\n".join(lines) + "\n" + cut)

    writer = ResultWriter(out, "json", resume=True)
    assert writer.done == {"a.png"}  # the cut record and the earlier error will be redone
    writer.write(RESULTS[2])
    writer.close()
    records = json.loads(out.read_text())
    assert [r["path"] for r in records] == ["a.png", "c.png"]
    assert records[1] == result_record(RESULTS[2])
    assert not partial.exists()


def test_resume_merges_output_and_partial_without_duplicates(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(result_record(ok("a.png", 0.11))) + "\n")
    partial = tmp_path / "r.jsonl.partial.jsonl"
    partial.write_text(
        json.dumps(result_record(ok("a.png", 0.99))) + "\n" + json.dumps(result_record(ok("b.png", 0.22))) + "\n"
    )
    writer = ResultWriter(out, "jsonl", resume=True)
    assert writer.done == {"a.png", "b.png"}
    writer.close()
    records = list(read_records(out))
    assert [(r["path"], r["p_fake"]) for r in records] == [("a.png", 0.11), ("b.png", 0.22)]


def test_resume_without_previous_files(tmp_path):
    writer = ResultWriter(tmp_path / "new.csv", "csv", resume=True)
    assert writer.done == set()
    writer.close()
    assert list(read_records(tmp_path / "new.csv")) == []


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_outputs_get_the_usual_permissions_not_a_temp_files_0600(tmp_path, fmt):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / f"r.{fmt}"
        with ResultWriter(out, fmt) as writer:
            writer.write(RESULTS[0])
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
