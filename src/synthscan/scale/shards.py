"""The output folder of a distributed scan: a plan of input shards and one Parquet file per shard.

OUT_DIR/
  _plan.parquet           every input path, one row group per shard (written once, reused on resume)
  shard-00000.parquet     the results of shard 0: one row per input file, ScanResult's fields
  ...
  _summary.json           counts, written when a run completes

A shard file appears by an atomic rename once all its images are scored, so its presence means
"done": a rerun scores only shards without a file, and an image is never scored in two shards.
OUT_DIR may be a local folder or any pyarrow filesystem URI (s3://bucket/run, gs://...); on a
cluster it must be a place every worker can write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from synthscan.result import ScanResult

PLAN = "_plan.parquet"  # "_": readers of the folder as one dataset (pyarrow, pandas) skip it
SUMMARY = "_summary.json"
NOTICE = pa.struct([("code", pa.string()), ("message", pa.string())])
# The CLI JSON's fields; explanation/provenance (free-form dicts) are stored as JSON text.
SCHEMA = pa.schema([
    ("path", pa.string()), ("status", pa.string()), ("sha256", pa.string()), ("width", pa.int64()),
    ("height", pa.int64()), ("format", pa.string()), ("p_fake", pa.float64()), ("verdict", pa.string()),
    ("threshold", pa.float64()), ("model", pa.string()), ("model_version", pa.string()), ("tiles", pa.int64()),
    ("padded", pa.bool_()), ("seconds", pa.float64()), ("error", NOTICE), ("warnings", pa.list_(NOTICE)),
    ("tile_scores", pa.list_(pa.struct([("box", pa.list_(pa.int64())), ("p_fake", pa.float64())]))),
    ("explanation", pa.string()), ("provenance", pa.string()),
])
JSON_TEXT_FIELDS = ("explanation", "provenance")


def filesystem(out_dir: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local folder or a URI such as s3://bucket/prefix."""
    if "://" in out_dir:
        return pafs.FileSystem.from_uri(out_dir)
    import os

    return pafs.LocalFileSystem(), os.path.abspath(out_dir)


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.parquet"


def write_plan(out_dir: str, paths: Iterable[str], shard_size: int) -> int:
    """Write the plan (atomically) and return the number of shards; paths stream through."""
    fs, root = filesystem(out_dir)
    fs.create_dir(root, recursive=True)
    tmp = f"{root}/.{PLAN}.{uuid.uuid4().hex}.tmp"
    shards, chunk = 0, []
    with fs.open_output_stream(tmp) as stream, pq.ParquetWriter(stream, pa.schema([("path", pa.string())])) as writer:
        for path in paths:
            chunk.append(path)
            if len(chunk) == shard_size:
                writer.write_table(pa.table({"path": chunk}))  # one row group per shard
                shards, chunk = shards + 1, []
        if chunk:
            writer.write_table(pa.table({"path": chunk}))
            shards += 1
    fs.move(tmp, f"{root}/{PLAN}")
    return shards


def plan_shards(out_dir: str) -> int | None:
    """The number of shards in OUT_DIR's plan, or None when there is no plan yet."""
    fs, root = filesystem(out_dir)
    if fs.get_file_info(f"{root}/{PLAN}").type == pafs.FileType.NotFound:
        return None
    with fs.open_input_file(f"{root}/{PLAN}") as f:
        return pq.ParquetFile(f).num_row_groups


def shard_paths(out_dir: str, shard: int) -> list[str]:
    fs, root = filesystem(out_dir)
    with fs.open_input_file(f"{root}/{PLAN}") as f:
        return pq.ParquetFile(f).read_row_group(shard).column("path").to_pylist()


def done_shards(out_dir: str) -> set[int]:
    fs, root = filesystem(out_dir)
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return {int(i.base_name[6:11]) for i in infos if i.base_name.startswith("shard-") and i.base_name.endswith(".parquet")}


def write_shard(out_dir: str, shard: int, results: list[ScanResult]) -> None:
    """Write the shard's results to a temporary name, then rename: readers never see half a shard."""
    records = []
    for r in results:
        record = r.model_dump(mode="json")
        for field in JSON_TEXT_FIELDS:
            record[field] = None if record[field] is None else json.dumps(record[field])
        records.append(record)
    fs, root = filesystem(out_dir)
    tmp = f"{root}/.{shard_name(shard)}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(tmp) as stream:
        pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), stream)
    fs.move(tmp, f"{root}/{shard_name(shard)}")


def read_results(out_dir: str) -> Iterator[ScanResult]:
    """Every result in OUT_DIR's shards, shard by shard in plan order."""
    fs, root = filesystem(out_dir)
    for shard in sorted(done_shards(out_dir)):
        with fs.open_input_file(f"{root}/{shard_name(shard)}") as f:
            for record in pq.read_table(f).to_pylist():
                for field in JSON_TEXT_FIELDS:
                    record[field] = None if record[field] is None else json.loads(record[field])
                record["warnings"] = record["warnings"] or []
                record["tile_scores"] = record["tile_scores"] or []
                yield ScanResult.model_validate(record)


def write_summary(out_dir: str, summary: dict) -> None:
    fs, root = filesystem(out_dir)
    tmp = f"{root}/.{SUMMARY}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(tmp) as stream:
        stream.write((json.dumps(summary, indent=2) + "\n").encode())
    fs.move(tmp, f"{root}/{SUMMARY}")
