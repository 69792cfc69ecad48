"""Detectors by name, and trained models by name or path.

Defining a `Detector` subclass with a `name` registers it; the first lookup imports every
built-in detector module and every plug-in (see `catalog.py`). Trained models ("weights") are
`<name>.json` + `<name>.safetensors` pairs: those bundled in `synthscan/weights/` are found by
name, anything else by path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from synthscan.detectors import catalog
from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.detectors.scoring import DEFAULT_MODEL, ModelInfo, Scorer, without_route_heads



def register_detector(cls: type[Detector]) -> type[Detector]:
    """Register a detector class by its `name` (subclassing `Detector` already does; kept for
    callers that register explicitly)."""
    return catalog.register(cls)


def get_detector_class(name: str) -> type[Detector]:
    return catalog.get(name)


def list_detectors() -> dict[str, type[Detector]]:
    """Every detector class by name: built-ins, registered ones and plug-ins."""
    return catalog.all_detectors()


def bundled_weights_dir() -> Path:
    return Path(str(resources.files("synthscan") / "weights"))


def list_bundled_models() -> dict[str, ModelInfo]:
    out = {}
    for json_path in sorted(bundled_weights_dir().glob("*.json")):
        if json_path.with_suffix(".safetensors").exists():
            out[json_path.stem] = ModelInfo.model_validate_json(json_path.read_text())
    return out


def resolve_model_path(model: str | Path) -> Path:
    """A bundled model name, or a path to `X.json`, `X.safetensors`, `X` or a folder with one model."""
    if isinstance(model, str) and (bundled_weights_dir() / f"{model}.json").exists():
        return bundled_weights_dir() / f"{model}.json"
    path = Path(model)
    if path.is_dir():
        candidates = without_route_heads([c for c in sorted(path.glob("*.json")) if c.with_suffix(".safetensors").exists()])
        if len(candidates) == 1:
            return candidates[0]
        raise FileNotFoundError(f"{path} holds {len(candidates)} models; name one of its .json files")
    json_path = path.with_suffix(".json") if path.suffix in {".safetensors", ""} else path
    if json_path.exists() and json_path.with_suffix(".safetensors").exists():
        return json_path
    known = ", ".join(list_bundled_models()) or "none"
    raise FileNotFoundError(
        f"no model {str(model)!r}: not a bundled model (bundled: {known}) nor a path to "
        "a .json/.safetensors pair"
    )


def load_model(model: str | Path | Scorer = DEFAULT_MODEL) -> Scorer:
    """A bundled model by name, a saved model by path, or an already loaded model as it is."""
    if isinstance(model, Scorer):
        return model
    return CalibratedModel.load(resolve_model_path(model))
