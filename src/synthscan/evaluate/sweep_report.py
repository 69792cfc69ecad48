"""A perturbation sweep as tables (rich, Markdown, HTML) and plots of metric vs level.

Plots need matplotlib (`pip install 'synthscan[robustness]'`): one PNG per perturbation kind,
AP and balanced accuracy against the level, one line per model, the clean value as level
"clean" on the left.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from synthscan.evaluate.report import _fmt, _md_table
from synthscan.evaluate.sweep import CLEAN, SweepResult
from synthscan.output import write_text_atomic

COLUMNS = [("AP", "ap"), ("AUC", "roc_auc"), ("bal acc", "balanced_accuracy"),
           ("real acc", "real_accuracy"), ("fake acc", "fake_accuracy")]
PLOTTED = [("AP", "ap"), ("balanced accuracy", "balanced_accuracy")]


def _delta(value: Any, clean: Any) -> str:
    return "—" if value is None or clean is None else f"{100 * (value - clean):+.1f}"


def summary_rows(sweep: SweepResult) -> list[list[str]]:
    """model, perturbation, level, the COLUMNS at the threshold, and the balanced-accuracy change
    from clean in points."""
    rows = []
    for r in sweep.rows:
        clean = sweep.row(r.model, CLEAN).metrics.get("balanced_accuracy")
        rows.append([r.model, r.perturbation, r.level or "—", *(_fmt(r.metrics.get(k)) for _, k in COLUMNS),
                     _delta(r.metrics.get("balanced_accuracy"), clean)])
    return rows


HEADERS = ["model", "perturbation", "level", *(h for h, _ in COLUMNS), "Δ bal acc (pts)"]


def _conditions(sweep: SweepResult, model: str) -> list[tuple[str, str]]:
    return [(r.perturbation, r.level) for r in sweep.rows if r.model == model]


def generator_tables(sweep: SweepResult) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per model: fake accuracy at the threshold per generator (rows) and condition (columns)."""
    out = []
    for model in sweep.models():
        rows = [r for r in sweep.rows if r.model == model]
        if not rows or rows[0].per_generator is None:
            continue
        gens = sorted(g for g, m in rows[0].per_generator.items() if m.get("n_fake"))
        headers = ["generator", *(f"{r.perturbation}:{r.level}" if r.level else r.perturbation for r in rows)]
        table = [[g, *(_fmt((r.per_generator or {}).get(g, {}).get("fake_accuracy")) for r in rows)] for g in gens]
        out.append((f"{model}: fake accuracy per generator", headers, table))
    return out


def plot(sweep: SweepResult, out_dir: str | Path) -> list[Path]:
    """One PNG per perturbation kind in `out_dir`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = list(dict.fromkeys(r.perturbation for r in sweep.rows if r.perturbation != CLEAN))
    paths = []
    for kind in kinds:
        fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4.2 * len(PLOTTED), 3.2))
        for ax, (title, key) in zip(axes, PLOTTED):
            for model in sweep.models():
                rows = [sweep.row(model, CLEAN)] + [r for r in sweep.rows if r.model == model and r.perturbation == kind]
                values = [r.metrics.get(key) for r in rows]
                ax.plot([r.level or CLEAN for r in rows], [float("nan") if v is None else v for v in values],
                        marker="o", label=model)
            ax.set_title(f"{title} under {kind}")
            ax.set_xlabel("level")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"sweep_{kind}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _intro(sweep: SweepResult) -> str:
    return (f"dataset `{sweep.dataset}` ({sweep.split or 'all'}) · {sweep.n_images} images · "
            f"seed {sweep.seed} · unreadable files left out: {sweep.errors}. Accuracies at each model's "
            "shipped threshold; Δ is the change in balanced accuracy from the clean images.")


def to_markdown(sweep: SweepResult, plots: list[Path] = (), relative_to: Path | None = None) -> str:
    parts = ["# Perturbation sweep", _intro(sweep), "## Summary\n\n" + _md_table(HEADERS, summary_rows(sweep))]
    for title, headers, rows in generator_tables(sweep):
        parts.append(f"## {title}\n\n" + _md_table(headers, rows))
    for p in plots:
        rel = p.relative_to(relative_to) if relative_to and p.is_relative_to(relative_to) else p
        parts.append(f"![{p.stem}]({rel.as_posix()})")
    return "\n\n".join(parts) + "\n"


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(sweep: SweepResult, plots: list[Path] = ()) -> str:
    """A self-contained page: the plots are embedded as base64 PNGs."""
    import base64

    parts = [f"<h1>Perturbation sweep</h1><p>{html.escape(_intro(sweep))}</p>",
             "<h2>Summary</h2>" + _html_table(HEADERS, summary_rows(sweep))]
    for title, headers, rows in generator_tables(sweep):
        parts.append(f"<h2>{html.escape(title)}</h2>" + _html_table(headers, rows))
    for p in plots:
        data = base64.b64encode(Path(p).read_bytes()).decode()
        parts.append(f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}">')
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Perturbation sweep</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"


def write_report(sweep: SweepResult, path: str | Path, *, plots: bool = True) -> list[Path]:
    """Write `path` (.html: self-contained; else Markdown with PNGs in `<stem>_plots/`); returns
    the files written."""
    path = Path(path)
    images = plot(sweep, path.parent / f"{path.stem}_plots") if plots else []
    if path.suffix.lower() in (".html", ".htm"):
        write_text_atomic(path, to_html(sweep, images))
    else:
        write_text_atomic(path, to_markdown(sweep, images, relative_to=path.parent))
    return [path, *images]


def print_rich(sweep: SweepResult, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    console.print(Text(_intro(sweep)))
    for title, headers, rows in [("Perturbation sweep", HEADERS, summary_rows(sweep)), *generator_tables(sweep)]:
        table = Table(title=title)
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i < 3 and title == "Perturbation sweep" or i == 0 else "right")
        for row in rows:
            table.add_row(*map(Text, row))
        console.print(table)
