"""One image in, one `Explanation` out: the orchestration of every explanation part.

The default offline path is Grad-CAM (w.r.t. the "fake" output) + its top regions, the trace
views and spectrum summary, the measured artifacts, the family attribution and the template
narrative. The trace, artifact and family parts live in their own modules. The verdict comes in
as an `ImageScore` (or is computed by `CalibratedModel.score`); nothing here builds a scanner.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from synthscan.detectors.base import CalibratedModel, ImageScore
from synthscan.detectors.registry import load_model
from synthscan.explain import artifacts, family, traces
from synthscan.explain.attribution import AttributionMap, attribution_maps, top_regions
from synthscan.explain.methods import get_method
from synthscan.explain.render import render_heatmap
from synthscan.explain.schema import Explanation
from synthscan.explain.template import template_narrative
from synthscan.explain.tile_scores import METHOD as TILE_SCORES
from synthscan.io import LoadedImage
from synthscan.result import ScanResult

if TYPE_CHECKING:
    from synthscan.explain.vlm import Narrator

MapMode = Literal["base64", "dir", "none"]

def _as_loaded(image: LoadedImage | np.ndarray) -> LoadedImage:
    if isinstance(image, LoadedImage):
        return image
    rgb = np.ascontiguousarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    return LoadedImage(path="<array>", rgb=rgb, format="array", original_mode="RGB", sha256="", n_frames=1)


def _file_stem(loaded: LoadedImage) -> str:
    """A file-name prefix for an image's maps: its name plus a hash prefix, so that two
    `photo.jpg` in different folders do not overwrite each other's maps."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(loaded.path).stem).strip("._-") or "image"
    return f"{stem}-{loaded.sha256[:8]}" if loaded.sha256 else stem


@lru_cache(maxsize=2)
def _cached_narrator(spec: str) -> Narrator:
    from synthscan.explain.vlm import make_narrator

    return make_narrator(spec)  # a local VLM loads once per process, not once per image


def _narrator(narrator: str | Narrator) -> Narrator:
    return _cached_narrator(narrator) if isinstance(narrator, str) else narrator


def _from_result(result: ScanResult, model: CalibratedModel) -> ImageScore:
    """The score a scan result records (its tiles only when `model` made them)."""
    if not result.ok:
        raise ValueError(f"cannot explain a failed scan: {result.error}")
    tiles = result.tile_scores if result.model == model.name else []
    return ImageScore(p_fake=result.p_fake, verdict=result.verdict, threshold=result.threshold,
                      boxes=[t.box for t in tiles], tile_p_fake=[t.p_fake for t in tiles], padded=result.padded)


def explain_image(
    model: str | Path | CalibratedModel,
    image: LoadedImage | np.ndarray,
    *,
    methods: Sequence[str] | None = None,
    maps: MapMode = "base64",
    maps_dir: str | Path | None = None,
    score: ImageScore | None = None,
    result: ScanResult | None = None,
    target: str = "fake",
    narrator: str | Narrator = "template",
    clip: str | None = None,
    clip_thresholds: str | Path | None = None,
    provenance_note: str | None = None,
) -> Explanation:
    """Explain one image (a `LoadedImage` or an (H, W, 3) uint8 array).

    methods: attribution methods (see `synthscan.explain.methods`; default: the detector's own
    `default_attribution`); the first one's map gives `regions`. When none of those asked for can
    explain the detector (no gradients), its tile-score map (`tile_scores.py`) is used instead. maps: "base64" embeds PNGs, "dir" writes them to `maps_dir`, "none"
    leaves pictures out (regions, artifacts and narrative are still computed). score: the image's
    `ImageScore` from `model` when already scored (as the scanner does), or result: its
    `ScanResult`; otherwise the image is scored here with `model.score`.
    narrator: "template" (offline), a `make_narrator` spec ("openai:URL#MODEL", "hf:ID") or a
    `Narrator`; if a model's answer never validates, the template narrative is kept and a
    warning says why. clip: a CLIP/SigLIP model id or folder that scores the taxonomy's semantic
    artifacts on the whole image and the top regions (thresholds from `clip_thresholds`).
    provenance_note: what the file's metadata says and what decided the final verdict
    (`synthscan.provenance.provenance_sentence`); the narrator is told it and the summary says it.
    """
    start = time.perf_counter()
    if maps == "dir" and maps_dir is None:
        raise ValueError("maps='dir' needs maps_dir")
    if maps not in ("base64", "dir", "none"):
        raise ValueError(f"maps must be 'base64', 'dir' or 'none', not {maps!r}")
    model = load_model(model)
    methods = tuple(methods) if methods is not None else (model.detector.default_attribution,)
    if not methods:
        raise ValueError("give at least one attribution method")
    loaded = _as_loaded(image)
    rgb = loaded.rgb
    score = score or (_from_result(result, model) if result is not None else model.score(rgb))
    routed = score.scored_by is not None or (result is not None and any(w.code == "jpeg-recompressed" for w in result.warnings))
    if routed and model.recompressed_scorer is not None:
        model = model.recompressed_scorer  # the maps explain the head that gave the score
    height, width = rgb.shape[:2]
    explanation = Explanation()
    warnings = explanation.warnings

    usable = [m for m in methods if get_method(m).supports(model.detector)]
    if skipped := [m for m in methods if m not in usable]:
        instead = "" if usable else "; its tile-score map is shown instead"
        warnings.append(f"{', '.join(skipped)} cannot explain the {model.detector.name} detector (no attribution "
                        f"layers or no gradients){instead}")
        usable = usable or [TILE_SCORES]
    known = dict(zip(score.boxes, score.tile_p_fake))  # crops the scan scored: tile-scores reuses them
    attributions: list[AttributionMap] = attribution_maps(model, rgb, usable, target, known=known)
    if attributions:
        first = attributions[0]
        explanation.regions = first.regions if first.regions is not None else top_regions(first.values, source=first.method)
    warnings += [w for a in attributions for w in a.warnings]
    if attributions and (coverage := min(a.coverage for a in attributions)) < 1.0:
        warnings.append(f"attribution maps cover {coverage:.0%} of the image (a limit on the number of tiles); "
                        "uncovered pixels show no attribution")
    stem = _file_stem(loaded)
    if maps != "none":
        for a in attributions:
            method = get_method(a.method)
            explanation.maps.append(render_heatmap(
                a.values, rgb, kind=a.method, title=method.map_title(a), note=method.note(a), mode=maps,
                out_dir=maps_dir, name=f"{stem}.{a.method.replace(':', '-')}",
            ))

    # The residual and spectra, computed once for the trace views, the artifacts and the family.
    shared = traces.ImageTraces(rgb, detector=model.detector)
    if maps != "none":
        explanation.maps += traces.trace_maps(shared, mode=maps, out_dir=maps_dir, stem=stem)
    explanation.spectrum = traces.spectrum_summary(shared)
    explanation.artifacts = measured = artifacts.measure_artifacts(shared, explanation.regions)
    explanation.family = family.attribute_family(shared)

    if clip:
        from synthscan.explain.clip_zero_shot import score_artifacts

        explanation.artifacts = [*explanation.artifacts, *score_artifacts(
            rgb, boxes=[r.box for r in explanation.regions[:3]], model_id=clip, thresholds=clip_thresholds)]

    explanation.narrative = template_narrative(
        score.p_fake, score.verdict, score.threshold, explanation.regions, measured,
        explanation.family, size=(width, height), target=target, provenance_note=provenance_note,
    )
    if narrator != "template":
        from synthscan.explain.vlm import NarrationError

        try:
            explanation.narrative = _narrator(narrator).narrate(rgb, explanation, score.p_fake, score.verdict,
                                                                  provenance_note=provenance_note)
        except NarrationError as exc:
            warnings.append(f"the vision-language narrative failed, the template's is kept: {exc}")
    explanation.seconds = round(time.perf_counter() - start, 4)
    return explanation

