"""Dataset layouts, one module each, tried in this order when none is named.

Each module has `NAME`, `EXPECTS` (what it looks for, quoted in errors), `matches(source)`
(a cheap look at folder names, no image is opened) and `read(source, track=None)` -> samples,
raising `DatasetError` for missing folders and empty class folders.
"""

from __future__ import annotations

from synthscan.data.layouts import cifake, folder, forensynths, genimage, manifest

# Most specific first: a manifest names everything; then the fixed top-level names of the folder
# layout and CIFAKE; GenImage and ForenSynths are recognised one or more levels down.
LAYOUTS = {m.NAME: m for m in (manifest, folder, cifake, genimage, forensynths)}
