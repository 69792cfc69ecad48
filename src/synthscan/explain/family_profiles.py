"""The bundled per-family mean residual-spectrum profiles, drawn next to an image's own profile.

`synthscan/explain/family_spectra.npz` is written offline by `synthscan fingerprints` (see
`fingerprints.py`); this module only reads it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from synthscan.explain.images import line_chart
from synthscan.explain.render import map_image
from synthscan.explain.schema import MapImage


@lru_cache(maxsize=1)
def family_profiles() -> dict[str, np.ndarray]:
    """The bundled per-family mean azimuthal profiles ({} when the file is absent)."""
    resource = resources.files("synthscan.explain").joinpath("family_spectra.npz")
    if not resource.is_file():
        return {}
    with resource.open("rb") as f, np.load(f) as data:
        return {k: data[k].astype(np.float32) for k in data.files}


def family_profile_map(own: np.ndarray, *, mode: str = "base64", out_dir=None, name: str | None = None) -> MapImage | None:
    """A chart of an image's residual-spectrum azimuthal profile against each family's mean.

    None when no family profiles are bundled or they have another number of bins. mode, out_dir
    and name: as `render.map_image`."""
    families = family_profiles()
    if not families or len(own) != len(next(iter(families.values()))):
        return None
    chart = line_chart({"this image": own, **families}, "Residual spectrum profile vs. family means",
                       "radial frequency, 0 -> 0.5 cycles/pixel")
    return map_image(chart, kind="spectrum-profile", title="Spectrum profile vs. generator families", mode=mode,
                     out_dir=out_dir, name=name,
                     note="Mean log-magnitude per radial frequency; a curve that follows a family's (e.g. missing or "
                         "boosted high frequencies) hints at that family. Family means are from synthbench train.")
