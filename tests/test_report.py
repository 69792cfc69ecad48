"""The HTML report: structure (parsed with html.parser), escaping, self-containment, the
`synthscan report` command, and a render in headless Chromium (screenshot not blank, no console
messages, sorting works) when Chromium is installed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthscan.cli.report import read_results
from synthscan.cli.main import app
from synthscan.explain.report_html import (
    render_report,
    thumbnail_data_url,
    write_report,
)
from synthscan.explain.schema import (
    ArtifactFinding,
    Explanation,
    FamilyAttribution,
    MapImage,
    Narrative,
    Region,
    SpectrumSummary,
)
from synthscan.result import Decision, Notice, ScanResult, Tile

EVIL = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """Every start tag as (tag, attrs), and the text of the page, for structural checks."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.scripts = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self.scripts += tag == "script"

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **words: str) -> list[dict[str, str]]:
        """Start tags named `tag` whose attributes hold each given word (`class_` for class)."""
        return [a for t, a in self.tags
                if t == tag and all(w in a.get(k.rstrip("_"), "").split() for k, w in words.items())]


def png_base64(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def photo(tmp_path) -> Path:
    """A 160 x 120 picture with structure, so a screenshot of it is far from blank."""
    y, x = np.mgrid[0:120, 0:160]
    rgb = np.stack([x * 1.5, y * 2.0, (x + y) % 64 * 4], axis=-1).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


def explanation() -> Explanation:
    heat = np.zeros((30, 40, 3), np.uint8)
    heat[5:15, 20:35] = (255, 200, 0)
    residual = np.random.default_rng(0).integers(0, 255, (30, 40), dtype=np.uint8)
    return Explanation(
        maps=[
            MapImage(kind="gradcam", title="Grad-CAM", width=40, height=30, png_base64=png_base64(heat),
                     note="bright where the detector looked"),
            MapImage(kind="residual", title="Noise residual", width=40, height=30, png_base64=png_base64(residual)),
            MapImage(kind="spectrum", title="Spectrum", width=40, height=30, png_base64="not base64!!"),
        ],
        regions=[Region(box=(80, 20, 140, 60), score=0.9)],
        artifacts=[
            ArtifactFinding(id="grid-peaks", name="Checkerboard grid", group="frequency", score=0.81,
                            evidence="measured", explanation="Peaks at 1/8 cycles/pixel.", box=(10, 10, 70, 50)),
            ArtifactFinding(id="smooth-bg", name=f"Smooth {EVIL}", group="texture", score=0.4,
                            evidence="measured", explanation="Low detail.", box=None),
            ArtifactFinding(id="saturation", name="Saturated colours", group="colour", score=0.7,
                            evidence="measured", explanation="Vivid.", box=(0, 90, 30, 120), extent="image"),
        ],
        spectrum=SpectrumSummary(azimuthal_profile=[5.0, 4.0, 3.2, 2.9, 3.5, 2.0], peaks=[(0.125, 0.0, 3.1)]),
        family=FamilyAttribution(probabilities={"gan": 0.7, "diffusion": 0.2, "autoregressive": 0.05, "unknown": 0.05},
                                 top="gan", model="family-head-test"),
        narrative=Narrative(
            summary="The image shows a periodic grid typical of up-sampling.", source="template",
            artifacts=[ArtifactFinding(id="halo", name="Edge halo", group="edges", score=0.6, evidence="model",
                                       explanation="Halo around the roof.", box=(90, 70, 150, 110))],
        ),
        seconds=0.12,
    )


@pytest.fixture
def results(photo) -> list[ScanResult]:
    common = dict(status="ok", width=160, height=120, format="PNG", threshold=0.5, model="tiny", model_version="1")
    return [
        ScanResult(path=str(photo), p_fake=0.91, verdict="ai-generated", tiles=4, seconds=0.3,
                   tile_scores=[Tile(box=(0, 0, 80, 60), p_fake=0.2), Tile(box=(80, 0, 160, 60), p_fake=0.95),
                                Tile(box=(0, 60, 80, 120), p_fake=0.5), Tile(box=(80, 60, 160, 120), p_fake=0.7)],
                   explanation=explanation(), **common),
        ScanResult(path=str(photo.parent / "missing.png"), status="error", seconds=0.01,
                   error=Notice(code="not-found", message="The path does not exist.")),
        ScanResult(path=str(photo), p_fake=0.1, verdict="real", tiles=1, seconds=0.2,
                   tile_scores=[Tile(box=(0, 0, 160, 120), p_fake=0.1)],
                   warnings=[Notice(code="exif-rotated", message="rotated")], **common),
        ScanResult(path=f"/tmp/{EVIL}.png", p_fake=0.4, verdict="uncertain", tiles=1, seconds=0.05, **common),
    ]


DECISION = Decision(threshold=0.5, uncertain_low=0.35, uncertain_high=0.65)


def test_page_structure(results, tmp_path):
    out = write_report(results, tmp_path / "sub" / "report.html", title="Batch", decision=DECISION)
    assert out == tmp_path / "sub" / "report.html"
    assert not [p for p in out.parent.iterdir() if p.name != "report.html"]  # no temp file left
    page = Page(out.read_text())

    # The summary table: one row per result in order, sortable headers, error code shown.
    rows = [a for t, a in page.tags if t == "tr" and "data-path" in a]
    assert [r["data-path"] for r in rows] == [r.path for r in results]
    assert [a["data-key"] for a in page.find("th") if "data-key" in a] == [
        "number", "path", "verdict", "source", "p_fake", "threshold", "tiles", "seconds", "error"]
    p_fake_cells = [a["data-value"] for t, a in page.tags if t == "td" and "data-value" in a][3::8]  # 8 cells carry one
    assert p_fake_cells == ["0.91", "", "0.1", "0.4"]

    # One card per result, with the verdict's class; errors have their own card.
    cards = page.find("article")
    assert [c["class"] for c in cards] == ["card ai-generated", "card error", "card real", "card uncertain"]
    text = " ".join(page.text)
    assert "not-found" in text and "The path does not exist." in text
    assert "No explanation was computed for this image." in text  # the real and uncertain results

    # The explained result: thumbnail, heatmap over it, boxes for artifacts with a box only.
    first = out.read_text().split('id="result-1"')[1].split("</article>")[0]
    card = Page(first)
    assert card.find("img", class_="thumb")[0]["src"].startswith("data:image/jpeg;base64,")
    assert card.find("img", class_="heat")[0]["src"] == "data:image/png;base64," + explanation().maps[0].png_base64
    assert card.find("svg")[0]["viewbox"] == "0 0 160 120"
    boxes = [(a["x"], a["y"], a["width"], a["height"]) for a in card.find("rect")]
    assert ("10", "10", "60", "40") in boxes  # measured artifact
    assert ("90", "70", "60", "40") in boxes  # artifact the narrative named
    assert ("80", "20", "60", "40") in boxes  # attribution region
    assert len(card.find("g", class_="tile")) == 4 and len(card.find("g", class_="artifact")) == 3
    assert len(card.find("g", class_="image")) == 1  # the whole-image finding's box is drawn apart
    card_text = " ".join(card.text)
    artifact_layer = Page(first.split('class="layer-artifacts"')[1].split("</g>\n          </g>")[0])
    assert [t.strip() for t in artifact_layer.text if t.strip().isdigit()] == ["1", "3", "4"]  # as in the table
    assert "Checkerboard grid" in card_text and "Edge halo" in card_text
    assert "whole image, peak 0,90,30,120" in card_text
    assert "periodic grid typical of up-sampling" in card_text and "written by template" in card_text
    assert "gan" in card_text and "family-head-test" in card_text
    assert "Noise residual" in card_text and "could not be embedded" in card_text  # bad base64 reported
    assert card.find("polyline")[0]["points"].startswith("0.00,1.00")
    # The uncertain band is drawn from the decision rule.
    assert "left: 35.00%; width: 30.00%" in first and "uncertain between 0.350 and 0.650" in card_text
    assert {"heatmap", "artifacts", "regions", "tiles"} == {a["data-layer"] for a in card.find("input") if "data-layer" in a}
    # A single tile is the whole image: no grid is drawn for it.
    third = Page(out.read_text().split('id="result-3"')[1].split("</article>")[0])
    assert third.find("img", class_="thumb") and not third.find("g", class_="tile")


def test_user_strings_are_escaped_and_nothing_loads_from_outside(results, tmp_path):
    html = render_report(results, title=f"T {EVIL}", decision=DECISION)
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Page(html)
    assert page.scripts == 1  # the page's own script only
    sources = [a.get("src", "") for t, a in page.tags if t == "img"] + [a.get("href", "") for t, a in page.tags if t in {"a", "link"}]
    assert sources and all(s.startswith(("data:image/", "#")) for s in sources), sources
    policy = page.find("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    # The script the policy allows is exactly the one in the page.
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


def test_thumbnails_band_lookup_and_bad_explanations(results, photo, tmp_path):
    # A given thumbnail wins over the file; anything but a data: URL is refused.
    given = thumbnail_data_url(np.full((20, 30, 3), 200, np.uint8))
    html = render_report(results[:1], thumbnails={results[0].path: given})
    assert Page(html).find("img", class_="thumb")[0]["src"] == given
    with pytest.raises(ValueError, match="data:image"):
        render_report(results[:1], thumbnails={results[0].path: "https://example.com/x.png"})
    # Thumbnails are bounded.
    big = Image.open(io.BytesIO(base64.b64decode(thumbnail_data_url(np.zeros((900, 1200, 3), np.uint8)).split(",")[1])))
    assert big.size == (512, 384)
    # Without a decision rule and with an unknown model, no band is invented.
    html = render_report(results[2:3])
    assert 'class="band"' not in html and "uncertain band not known" in html
    # The bundled default model's band is found by its name.
    from synthscan.detectors.registry import DEFAULT_MODEL, list_bundled_models

    info = list_bundled_models()[DEFAULT_MODEL]
    bundled = results[2].model_copy(update={"model": info.name, "model_version": info.version,
                                             "threshold": info.decision.threshold})
    assert f"uncertain between {info.decision.uncertain_low:.3f}" in render_report([bundled])
    # Maps saved as files are read relative to maps_dir and embedded.
    (tmp_path / "maps").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "maps" / "npr.png")
    on_disk = Explanation(maps=[MapImage(kind="npr", title="NPR", width=8, height=8, path="maps/npr.png")])
    with_file = results[2].model_copy(update={"explanation": on_disk})
    embedded = Page(render_report([with_file], maps_dir=tmp_path)).find("img", alt="NPR")
    assert embedded[0]["src"] == "data:image/png;base64," + base64.b64encode((tmp_path / "maps" / "npr.png").read_bytes()).decode()
    # A file that is gone still renders; an explanation that does not match the schema is refused
    # when the results are read, naming the entry and the field.
    gone = results[2].model_copy(update={"path": str(tmp_path / "gone.png")})
    assert "no picture" in " ".join(Page(render_report([gone])).text)
    record = gone.model_dump(mode="json", exclude_none=True) | {"explanation": {"maps": "nope"}}
    (tmp_path / "broken.json").write_text(json.dumps([record]))
    with pytest.raises(ValueError, match=r"entry 1 is not a scan result \(explanation.maps"):
        read_results(str(tmp_path / "broken.json"))


def test_report_command_from_jsonl_and_json(results, tmp_path):
    records = [r.model_dump(mode="json", exclude_none=True) for r in results]
    jsonl = tmp_path / "results.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "r.html"
    run = CliRunner().invoke(app, ["report", str(jsonl), "--out", str(out), "--title", "From CLI"])
    assert run.exit_code == 0, run.output
    page = Page(out.read_text())
    assert len(page.find("article")) == 4 and "From CLI" in " ".join(page.text)

    as_json = tmp_path / "results.json"
    as_json.write_text(json.dumps(records[:2]))
    run = CliRunner().invoke(app, ["report", str(as_json), "--out", str(out)])
    assert run.exit_code == 0 and len(Page(out.read_text()).find("article")) == 2

    # From stdin, with the band of a named model.
    out_stdin = tmp_path / "stdin.html"
    run = CliRunner().invoke(app, ["report", "-", "-o", str(out_stdin), "--model", "synthscan-default"],
                             input=jsonl.read_text())
    assert run.exit_code == 0, run.output
    from synthscan.detectors.registry import list_bundled_models

    low = list_bundled_models()["synthscan-default"].decision.uncertain_low
    assert f"uncertain between {low:.3f}" in out_stdin.read_text()

    run = CliRunner().invoke(app, ["report", str(jsonl), "-o", str(out), "--model", str(tmp_path / "nope.json")])
    assert run.exit_code == 2 and "no model" in run.output
    as_json.write_text(json.dumps([{"path": "a", "status": "maybe"}]))
    run = CliRunner().invoke(app, ["report", str(as_json), "-o", str(out)])
    assert run.exit_code == 2 and "entry 1 is not a scan result (status" in run.output
    jsonl.write_text(json.dumps(records[0]) + "\n{broken\n")
    run = CliRunner().invoke(app, ["report", str(jsonl), "--out", str(tmp_path / "x.html")])
    assert run.exit_code == 2 and "line 2" in run.output and not (tmp_path / "x.html").exists()


# --- headless Chromium -------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    command = [CHROMIUM, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message and uncaught error as `...:CONSOLE:<line>] "..."`."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it in .ci/run)")


@needs_chromium
def test_renders_in_chromium_without_console_messages(results, tmp_path):
    report = write_report(results, tmp_path / "report.html", decision=DECISION)
    shot = tmp_path / "shot.png"
    run = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri())
    assert shot.exists(), run.stderr[-2000:]
    assert console_lines(run.stderr) == []
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200) and pixels.std() > 20  # not a blank page

    # The check above does see errors: a page with a failing script is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    assert any("Uncaught ReferenceError" in line for line in console_lines(chromium(tmp_path, "--dump-dom", bad.as_uri()).stderr))


@needs_chromium
def test_sorting_and_layer_switches_in_chromium(results, tmp_path):
    html = render_report(results, decision=DECISION)
    # Drive the page's own script: click the p_fake header twice and a layer switch, then record.
    driver = """<script>
const header = document.querySelector('th[data-key="p_fake"] button');
const order = () => [...document.querySelectorAll("table.summary tbody tr")].map((r) => r.cells[0].textContent).join(",");
header.click(); document.body.dataset.ascending = order();
header.click(); document.body.dataset.descending = order();
const box = document.querySelector('input[data-layer="tiles"]'); box.click();
document.body.dataset.figure = box.closest(".card").querySelector("figure.evidence").className;
</script></body>"""
    page = tmp_path / "driven.html"
    # The policy pins the page's script by hash; drop it so that the test's driver may run too.
    page.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", driver))
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert 'data-ascending="3,4,1,2"' in dom  # p_fake 0.1, 0.4, 0.91, then the error's blank
    assert 'data-descending="1,4,3,2"' in dom  # blanks stay last
    assert 'data-figure="evidence hide-tiles"' in dom
