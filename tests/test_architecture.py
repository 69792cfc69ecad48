"""The package's import graph flows one way: no import cycles outside `synthscan.cli`.

Every import counts, including those inside functions (where cycles used to hide); imports
under `if TYPE_CHECKING:` do not, as they never run. The graph is grimp's (import-linter's
engine), its strongly connected components scipy's.
"""

from __future__ import annotations

import grimp
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


def import_cycles(package: str = "synthscan", skip: str = "synthscan.cli") -> list[list[str]]:
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    modules = sorted(m for m in graph.modules if not (m == skip or m.startswith(skip + ".")))
    index = {m: i for i, m in enumerate(modules)}
    edges = [(index[m], index[t]) for m in modules for t in graph.find_modules_directly_imported_by(m) if t in index]
    rows, cols = zip(*edges)
    adjacency = csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(modules), len(modules)))
    _, labels = connected_components(adjacency, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for module, label in zip(modules, labels):
        groups.setdefault(label, []).append(module)
    return [group for group in groups.values() if len(group) > 1]


def test_no_import_cycles_outside_the_cli():
    assert import_cycles() == []


def test_the_check_finds_a_cycle(tmp_path, monkeypatch):
    (tmp_path / "loopy").mkdir()
    (tmp_path / "loopy" / "__init__.py").write_text("")
    (tmp_path / "loopy" / "a.py").write_text("def f():\n    from loopy import b\n")
    (tmp_path / "loopy" / "b.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("loopy", skip="loopy.cli") == [["loopy.a", "loopy.b"]]
