"""The HTML report: one self-contained page for a batch of scan results.

Everything the page shows is inside the file (pictures as data URLs, CSS and a few lines of JS
inline) and its Content-Security-Policy forbids loading anything else, so it opens offline and
can be mailed or archived as is. Jinja2 autoescaping escapes every string that comes from a
result (paths, messages, model answers); the only script allowed to run is the page's own,
pinned by its hash.

The page has a sortable summary table and one card per result: verdict and probability with the
uncertain band, the image with its evidence drawn on it (attribution heatmap, artifact boxes,
attribution regions, per-tile scores), the evidence maps, the artifact list, family attribution,
the spectrum summary and the narrative. Error results get a card with their reason code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from synthscan import __version__
from synthscan.explain.attribution import METHODS  # noqa: F401  (registers every method)
from synthscan.explain.methods import overlays
from synthscan.explain.schema import ArtifactFinding, Explanation, MapImage
from synthscan.io.errors import REASONS, ImageLoadError
from synthscan.output import write_text_atomic
from synthscan.result import Decision, ScanResult

THUMBNAIL_MAX_SIDE = 512


@dataclass
class MapView:
    title: str
    kind: str
    note: str
    url: str | None  # None when the map could not be embedded; `problem` says why
    over_image: bool
    problem: str = ""


@dataclass
class Card:
    """What one result's card shows, prepared so that the template only lays it out."""

    number: int
    result: ScanResult
    decision: Decision | None = None
    thumbnail: str | None = None
    thumbnail_problem: str = ""
    width: int | None = None  # the image's size in pixels: the coordinates of every box
    height: int | None = None
    explanation: Explanation | None = None
    maps: list[MapView] = field(default_factory=list)
    findings: list[ArtifactFinding] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"result-{self.number}"

    @property
    def heatmap(self) -> MapView | None:
        return next((m for m in self.maps if m.over_image and m.url), None)

    @property
    def notes(self) -> list[str]:
        """Warnings of the scan and of the explanation, and what the report could not show."""
        notes = [f"{w.code}: {w.message}" for w in self.result.warnings]
        notes += self.explanation.warnings if self.explanation else []
        return notes + ([self.thumbnail_problem] if self.thumbnail_problem else [])

    @property
    def profile_points(self) -> str:
        """The spectrum's azimuthal profile as SVG polyline points in a 100 x 30 box."""
        profile = self.explanation.spectrum.azimuthal_profile if self.explanation and self.explanation.spectrum else []
        if len(profile) < 2:
            return ""
        values = np.asarray(profile, dtype=float)
        span = float(np.ptp(values)) or 1.0
        x = np.linspace(0, 100, len(values))
        y = 29 - 28 * (values - values.min()) / span
        return " ".join(f"{a:.2f},{b:.2f}" for a, b in zip(x, y))

    @property
    def label_size(self) -> float:
        """Font size of box labels in image pixels: about 1/30 of the longer side."""
        return max(self.width or 0, self.height or 0) / 30


def write_report(
    results: Iterable[ScanResult],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    thumbnails: dict[str, str] | None = None,
    decision: Decision | None = None,
    maps_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report for `results` to `path` atomically and return the path.

    `thumbnails` maps a result's path to a `data:image/...` URL to show instead of reading the
    file (see `thumbnail_data_url`). `decision` is the rule the verdicts came from, for drawing
    the uncertain band; without it the band of a bundled model is looked up by name, and is left
    out for other models. Maps saved as files (`MapImage.path`) are read relative to `maps_dir`
    (default: the current folder) and embedded.
    """
    html = render_report(results, title=title, thumbnails=thumbnails, decision=decision, maps_dir=maps_dir)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out, html)


def render_report(
    results: Iterable[ScanResult],
    *,
    title: str | None = None,
    thumbnails: dict[str, str] | None = None,
    decision: Decision | None = None,
    maps_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The report page as a string (see `write_report`)."""
    import jinja2  # the `report` extra (torch depends on it too)
    from markupsafe import Markup  # installed with jinja2

    thumbnails = thumbnails or {}
    for key, url in thumbnails.items():
        if not url.startswith("data:image/"):
            raise ValueError(f"thumbnail for {key!r} must be a data:image/... URL")
    results = list(results)
    cards = [
        _card(number, result, thumbnails.get(result.path), decision, Path(maps_dir or "."))
        for number, result in enumerate(results, start=1)
    ]
    templates = resources.files("synthscan.explain") / "templates"
    script = (templates / "report.js").read_text(encoding="utf-8")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("synthscan.explain", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(
        title=title or "synthscan report",
        cards=cards,
        counts=_counts(results),
        models=sorted({f"{r.model} {r.model_version or ''}".strip() for r in results if r.model}),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        style=Markup((templates / "report.css").read_text(encoding="utf-8")),
        script=Markup(script),
        script_hash=base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii"),
        tile_colour=_tile_colour,
        reasons=REASONS,
    )


def thumbnail_data_url(image: str | os.PathLike[str] | np.ndarray | Image.Image,
                       max_side: int = THUMBNAIL_MAX_SIDE) -> str:
    """A JPEG data URL of `image` (a file, an RGB array or a PIL image), at most `max_side` px.

    Files are decoded like a scan decodes them (EXIF orientation applied), so that boxes in
    image coordinates land where they should. Raises `synthscan.io.ImageLoadError` for files
    that cannot be decoded.
    """
    return _jpeg_data_url(_as_picture(image), max_side)


def _as_picture(image: str | os.PathLike[str] | np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        return Image.fromarray(image).convert("RGB")
    from synthscan.io import load_image

    return Image.fromarray(load_image(image).rgb)


def _jpeg_data_url(picture: Image.Image, max_side: int) -> str:
    picture = picture.copy()
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _card(number: int, result: ScanResult, thumbnail: str | None, decision: Decision | None,
          maps_dir: Path) -> Card:
    card = Card(number=number, result=result, width=result.width, height=result.height, thumbnail=thumbnail)
    if not result.ok:
        return card
    card.decision = decision or _bundled_decision(result)
    card.explanation = result.explanation
    if card.explanation:
        card.maps = [_map_view(m, maps_dir) for m in card.explanation.maps]
        card.findings = _findings(card.explanation)
    if card.thumbnail is None:
        try:
            picture = _as_picture(result.path)
        except ImageLoadError as exc:  # a moved or unreadable file only costs the picture
            card.thumbnail_problem = f"no picture: {exc.message}"
        else:
            card.thumbnail = _jpeg_data_url(picture, THUMBNAIL_MAX_SIDE)
            # Hand-made results may lack the size that places the boxes.
            card.width, card.height = card.width or picture.width, card.height or picture.height
    return card


def _map_view(image: MapImage, maps_dir: Path) -> MapView:
    view = MapView(title=image.title, kind=image.kind, note=image.note, url=None,
                   over_image=overlays(image.kind))
    try:
        if image.png_base64 is not None:
            data = base64.b64decode(image.png_base64, validate=True)
        elif image.path is not None:
            data = (maps_dir / image.path).read_bytes()
        else:
            view.problem = "the map has neither embedded data nor a file"
            return view
        with Image.open(io.BytesIO(data)) as picture:
            mime = Image.MIME[picture.format]
    except (OSError, binascii.Error, KeyError) as exc:
        view.problem = f"could not be embedded: {exc}"
        return view
    view.url = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return view


def _findings(explanation: Explanation) -> list[ArtifactFinding]:
    """Measured artifacts, then the ones the narrative's model named, without repeats."""
    narrated = explanation.narrative.artifacts if explanation.narrative else []
    seen, out = set(), []
    for finding in [*explanation.artifacts, *narrated]:
        key = (finding.id, finding.evidence, finding.box)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def _bundled_decision(result: ScanResult) -> Decision | None:
    """The decision rule of the bundled model that made `result`, moved to its threshold."""
    from synthscan.detectors.registry import list_bundled_models

    for info in list_bundled_models().values():
        if (info.name, info.version) == (result.model, result.model_version):
            if result.threshold is None or result.threshold == info.decision.threshold:
                return info.decision
            return info.decision.with_threshold(result.threshold)
    return None


def _counts(results: list[ScanResult]) -> dict[str, int]:
    counts = {"ai-generated": 0, "uncertain": 0, "real": 0, "error": 0}
    for result in results:
        counts[result.verdict if result.ok and result.verdict else "error"] += 1
    return counts


def _tile_colour(p_fake: float) -> str:
    """Green for real through yellow to red for generated."""
    return f"hsl({120 * (1 - min(max(p_fake, 0.0), 1.0)):.0f}, 85%, 45%)"
