"""Do the bundled models score the synthbench val split exactly as they did at an older commit?

A refactor must not change a score (issue 11). This checks out REF into a temporary git
worktree, scores the val split there with REF's own code and REF's bundled model files, then
scores the same files with the same model files and this tree's code, and prints, per model, the
largest difference in P(fake) and how many pixel verdicts differ. Provenance fusion is turned
off here (REF may predate it): this compares the pixels' scores.

    python benchmarks/score_parity.py --data ../shared/synthbench/manifest.csv --ref aedd300

Needs ../shared/synthbench (not in CI): a benchmark, not a test. The fast check that runs in CI
is tests/test_example_scores.py (the examples/ folder).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs in a child process with either tree's sources first on the path: only APIs that REF has too.
SCORE = """
import json, sys
from synthscan.scanning import Scanner
model, paths = sys.argv[1], json.load(open(sys.argv[2]))
options = {"provenance": False} if "provenance" in Scanner.__init__.__code__.co_varnames else {}
scanner = Scanner(model, **options)
print(json.dumps({r.path: [r.p_fake, r.verdict] for r in scanner.scan_paths(paths)}))
"""


def score(src: Path, model_json: Path, paths_file: Path) -> dict[str, list]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", SCORE, str(model_json), str(paths_file)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="synthbench manifest.csv")
    ap.add_argument("--ref", required=True, help="the older commit (e.g. the one before a refactor)")
    ap.add_argument("--track", default="256")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N val images (0: all)")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from synthscan.data.datasets import read_manifest

    val = [s.path for s in read_manifest(args.data, track=args.track) if s.split == "val"]
    val = val[: args.limit] if args.limit else val
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.ref], check=True)
        try:
            paths_file = Path(tmp) / "paths.json"
            paths_file.write_text(json.dumps(val))
            print(f"{len(val)} val images of the {args.track} track; ref {args.ref} vs this tree")
            print("| model file (at ref) | images | max abs diff P(fake) | verdicts that differ |")
            print("|---|---|---|---|")
            for model_json in sorted((tree / "src" / "synthscan" / "weights").glob("*.json")):
                old = score(tree / "src", model_json, paths_file)
                new = score(ROOT / "src", model_json, paths_file)
                common = sorted(set(old) & set(new))
                diff = max(abs(old[p][0] - new[p][0]) for p in common if old[p][0] is not None)
                flips = sum(old[p][1] != new[p][1] for p in common)
                print(f"| {model_json.name} | {len(common)} | {diff:.2e} | {flips} |", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
