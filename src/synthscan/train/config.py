"""Training configuration files: one readable TOML per detector, holding the reports' settings.

A config has three optional tables:

    [detector]   # fields of the detector's Config (e.g. npr: scales, widths, channel_attention)
    [train]      # TrainConfig: epochs, batch_size, lr, weight_decay, patience, seed, pretrain_epochs
    [augment]    # AugmentConfig: crop_size, jpeg_p, jpeg_quality = [lo, hi], blur_p, ...

Settings are layered, later winning: dataclass defaults < the detector's bundled
`synthscan/configs/<detector>.toml` < the user's `--config FILE` < options given on the command line.
"""

from __future__ import annotations

import dataclasses
import sys
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from synthscan.data.augment import AugmentConfig
from synthscan.train.trainer import TrainConfig

TABLES = ("detector", "train", "augment")


class ConfigError(ValueError):
    pass


def bundled_config_path(detector: str) -> Path | None:
    path = resources.files("synthscan") / "configs" / f"{detector}.toml"
    return Path(str(path)) if path.is_file() else None


def read_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    unknown = set(data) - set(TABLES)
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}; expected {list(TABLES)}")
    return {table: dict(data.get(table, {})) for table in TABLES}


def _build(cls, values: dict[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
    from pydantic import ValidationError

    try:  # TOML has arrays, the dataclasses hold (lo, hi) tuples.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (ValidationError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def resolve_config(
    detector: str,
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], TrainConfig]:
    """The detector config dict and TrainConfig after layering bundled, user and CLI settings."""
    layers = [read_config_file(p) for p in (bundled_config_path(detector), config_file) if p is not None]
    layers.append({t: dict((overrides or {}).get(t, {})) for t in TABLES})
    merged: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
    for layer in layers:
        for table in TABLES:
            merged[table].update({k: v for k, v in layer.get(table, {}).items() if v is not None})
    where = str(config_file or f"configs/{detector}.toml")
    detector_config = _check_detector_config(detector, merged["detector"], f"{where} [detector]")
    augment = _build(AugmentConfig, merged["augment"], f"{where} [augment]")
    train = _build(TrainConfig, {**merged["train"], "augment": augment}, f"{where} [train]")
    return detector_config, train


def _check_detector_config(detector: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    from pydantic import ValidationError

    from synthscan.detectors.registry import get_detector_class

    config_cls = get_detector_class(detector).Config
    unknown = set(values) - set(config_cls.model_fields)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(config_cls.model_fields)}")
    try:
        config_cls.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return values
