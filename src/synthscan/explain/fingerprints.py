"""Generator fingerprints: mean residual spectra per generator and family, and distances to real.

For every image of a labelled dataset, the residual log-spectrum of `traces.residual_log_spectrum`
(128 x 128, Welch-averaged, Gaussian high-pass residual). Then:
- the mean spectrum of the real images, and per generator and per family the difference of
  their mean spectrum from it (the "fingerprint": what the generator adds or removes);
- each image's distance to the real mean: the RMS difference of the two spectra after removing
  each one's mean (so the overall noise level does not dominate), in natural-log units;
- the per-family mean azimuthal profiles, saved as `family_spectra.npz` (float16), which
  `family_profiles.family_profile_map` draws next to an image's own profile.

The bundled `synthscan/explain/family_spectra.npz` was made by:
    synthscan fingerprints ../shared/synthbench/manifest.csv --split train --track 256 \
        --out runs/fingerprints --family-spectra src/synthscan/explain/family_spectra.npz
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from synthscan.data.datasets import Sample
from synthscan.explain.images import bar_chart, line_chart
from synthscan.explain.render import colormap
from synthscan.explain.traces import azimuthal_profile, noise_residual, residual_log_spectrum
from synthscan.io.loading import load_image

FIGURE_SIDE = 256  # spectra are drawn at this size (nearest up-sampling) to stay readable


def image_spectrum(rgb: np.ndarray) -> np.ndarray:
    return residual_log_spectrum(noise_residual(rgb))


def spectrum_distance(spectrum: np.ndarray, reference: np.ndarray) -> float:
    """RMS difference of two log-spectra, each centred on its own mean."""
    return float(np.sqrt(np.mean(((spectrum - spectrum.mean()) - (reference - reference.mean())) ** 2)))


def compute_fingerprints(samples: Iterable[Sample], out: Path,
                         progress: Callable[[int], None] | None = None) -> dict:
    """Write the figures, `distances.csv`, `summary.json` and `family_spectra.npz` into `out`.

    Returns the summary. Images that cannot be read are skipped and counted.
    """
    out.mkdir(parents=True, exist_ok=True)
    kept: list[Sample] = []
    spectra: list[np.ndarray] = []
    skipped = 0
    for i, sample in enumerate(samples):
        try:
            spectra.append(image_spectrum(load_image(sample.path).rgb).astype(np.float16))
            kept.append(sample)
        except Exception:  # an unreadable image must not stop a long run; it is counted
            skipped += 1
        if progress:
            progress(i + 1)
    if not kept:
        raise ValueError("no readable images")
    sizes = {s.shape for s in spectra}
    if len(sizes) > 1:
        raise ValueError(f"images give spectra of different sizes {sorted(sizes)}: use images of at least 128 px")
    stack = np.stack(spectra).astype(np.float32)
    labels = np.array([s.label for s in kept])
    if not (labels == "real").any():
        raise ValueError("the dataset has no real images to compare with")
    real_mean = stack[labels == "real"].mean(axis=0)
    distances = [spectrum_distance(s, real_mean) for s in stack]

    _save(out / "real_mean_spectrum.png", colormap(_unit(real_mean)))
    summary: dict = {"n_images": len(kept), "skipped": skipped, "spectrum_size": int(real_mean.shape[0]),
                     "generators": {}, "families": {}}
    profiles: dict[str, np.ndarray] = {}
    for key, folder in (("generator", "generators"), ("family", "families")):
        for name in sorted({getattr(s, key) for s in kept}):
            members = np.array([getattr(s, key) == name for s in kept])
            mean = stack[members].mean(axis=0)
            if name != "real":
                _save(out / folder / f"{_file_name(name)}.png", colormap(_signed_unit(mean - real_mean)))
            d = np.asarray(distances)[members]
            summary[folder][name] = {
                "n": int(members.sum()), "mean_distance": round(float(d.mean()), 4),
                "median_distance": round(float(np.median(d)), 4)}
            if key == "family":
                profiles[name] = azimuthal_profile(mean)

    np.savez(out / "family_spectra.npz", **{k: v.astype(np.float16) for k, v in profiles.items()})
    _save(out / "profiles.png", line_chart(profiles, "Mean residual spectrum by family (log magnitude)",
                                           "radial frequency, 0 -> 0.5 cycles/pixel"))
    by_generator = sorted(summary["generators"].items(), key=lambda kv: -kv[1]["mean_distance"])
    _save(out / "distances.png", bar_chart({k: v["mean_distance"] for k, v in by_generator},
                                           "Mean distance to the real-mean spectrum"))
    with (out / "distances.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "generator", "family", "distance"])
        for sample, d in zip(kept, distances):
            writer.writerow([sample.path, sample.label, sample.generator, sample.family, f"{d:.4f}"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _unit(values: np.ndarray) -> np.ndarray:
    low, high = np.percentile(values, [1, 99])
    return np.clip((values - low) / max(high - low, 1e-6), 0, 1)


def _signed_unit(values: np.ndarray) -> np.ndarray:
    """Differences around 0 -> 0..1 with 0 at the middle of the colour ramp."""
    scale = max(float(np.percentile(np.abs(values), 99)), 1e-6)
    return np.clip(0.5 + 0.5 * values / scale, 0, 1)


def _save(path: Path, picture: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(picture)
    if max(image.size) < FIGURE_SIDE and picture.ndim == 3 and picture.shape[0] == picture.shape[1]:
        image = image.resize((FIGURE_SIDE, FIGURE_SIDE), Image.NEAREST)
    image.save(path)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "unnamed"
