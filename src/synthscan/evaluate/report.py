"""An evaluation report: metrics per generator, per family and overall, as Markdown, JSON or rich."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from .metrics import brier, expected_calibration_error, per_group_metrics

POOL_NOTE = (
    "Per-generator and per-family AP, AUC, real/balanced accuracy and oracle threshold pair "
    "each group's fakes with all real images; n, acc and oracle acc count the group's own images."
)
_COLUMNS = [  # (header, metrics key)
    ("n", "n"),
    ("acc", "accuracy"),
    ("real acc", "real_accuracy"),
    ("fake acc", "fake_accuracy"),
    ("bal acc", "balanced_accuracy"),
    ("AP", "ap"),
    ("AUC", "roc_auc"),
    ("oracle acc", "oracle_accuracy"),
    ("oracle bal acc", "oracle_balanced_accuracy"),
]


class EvalReport(BaseModel):
    model: str
    model_version: str
    dataset: str
    split: str
    threshold: float
    overall: dict[str, Any]
    per_generator: dict[str, dict[str, Any]]
    per_family: dict[str, dict[str, Any]]
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    errors: int = 0  # files that failed to load (p_fake None), excluded from every metric


def _get(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, Mapping) else getattr(record, key, None)


def _label(value: Any) -> int:
    if isinstance(value, str) and value.lower() in ("real", "fake"):
        return int(value.lower() == "fake")
    if value in (0, 1):  # also True/False
        return int(value)
    raise ValueError(f'label must be "real" or "fake", got {value!r}')


def build_report(
    records: Iterable[Any], threshold: float, *, model: str, model_version: str, dataset: str, split: str
) -> EvalReport:
    """Score ``records`` (dicts or objects with ``label``, ``generator``, ``family``, ``p_fake``).

    Records with ``p_fake`` None count in ``errors`` and nowhere else. A missing generator or
    family becomes ``"real"`` for real images and ``"unknown"`` for fakes. Each per-generator
    entry also gets ``family`` (its most common one) and ``label`` (real/fake/mixed); the
    per-group protocol is that of `per_group_metrics` (fakes paired with all reals).
    """
    ys, ps, gens, fams, errors = [], [], [], [], 0
    for r in records:
        if _get(r, "p_fake") is None:
            errors += 1
            continue
        y = _label(_get(r, "label"))
        default = "unknown" if y else "real"
        ys.append(y)
        ps.append(float(_get(r, "p_fake")))
        gens.append(str(_get(r, "generator") or default))
        fams.append(str(_get(r, "family") or default))

    per_gen = per_group_metrics(ys, ps, gens, threshold)
    overall = per_gen.pop("overall")
    overall["ece"] = expected_calibration_error(ys, ps)
    overall["brier"] = brier(ys, ps)
    per_fam = per_group_metrics(ys, ps, fams, threshold)
    per_fam.pop("overall")
    fam_counts: dict[str, Counter] = {g: Counter() for g in per_gen}
    labels: dict[str, set[int]] = {g: set() for g in per_gen}
    for y, g, f in zip(ys, gens, fams):
        fam_counts[g][f] += 1
        labels[g].add(y)
    for name, m in per_gen.items():
        m["family"] = fam_counts[name].most_common(1)[0][0]
        m["label"] = "mixed" if len(labels[name]) > 1 else ("fake" if labels[name] == {1} else "real")
    return EvalReport(
        model=model, model_version=model_version, dataset=dataset, split=split,
        threshold=threshold, overall=overall, per_generator=per_gen, per_family=per_fam, errors=errors,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def _generator_rows(report: EvalReport) -> list[list[str]]:
    items = sorted(report.per_generator.items(), key=lambda kv: (str(kv[1].get("family")), kv[0]))
    return [[name, str(m.get("family", "—"))] + [_fmt(m.get(k)) for _, k in _COLUMNS] for name, m in items]


def _rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [[name] + [_fmt(m.get(k)) for _, k in _COLUMNS] for name, m in groups.items()]


def _header(report: EvalReport) -> str:
    return (
        f"model `{report.model}` {report.model_version} · dataset `{report.dataset}` "
        f"({report.split}) · threshold {report.threshold:.3f} · errors {report.errors}"
    )


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    cell = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: EvalReport) -> str:
    """Per-generator table (sorted by family, then name), per-family table, then overall."""
    cols = [h for h, _ in _COLUMNS]
    fam_rows = _rows(dict(sorted(report.per_family.items())))
    return "\n\n".join([
        f"# Evaluation: {_header(report)}",
        f"_{POOL_NOTE}_",
        "## Per generator\n\n" + _md_table(["generator", "family", *cols], _generator_rows(report)),
        "## Per family\n\n" + _md_table(["family", *cols], fam_rows),
        "## Overall\n\n" + _md_table(["", *cols], _rows({"overall": report.overall})),
        f"Calibration: ECE {_fmt(report.overall.get('ece'))}, Brier {_fmt(report.overall.get('brier'))}.",
    ]) + "\n"


def to_json(report: EvalReport) -> str:
    return report.model_dump_json(indent=2)


def print_rich_table(report: EvalReport, console: Any = None) -> None:
    """Print the three tables of `to_markdown` to a rich console."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    cols = [h for h, _ in _COLUMNS]
    console.print(Text(_header(report)))
    specs = [
        ("Per generator", ["generator", "family", *cols], _generator_rows(report)),
        ("Per family", ["family", *cols], _rows(dict(sorted(report.per_family.items())))),
        ("Overall", ["", *cols], _rows({"overall": report.overall})),
    ]
    for title, headers, rows in specs:
        table = Table(title=title)
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i < len(headers) - len(cols) else "right")
        for row in rows:
            table.add_row(*map(Text, row))
        console.print(table)
    console.print(Text(POOL_NOTE, style="dim"))
