"""Provenance signals on real files made here (JPEG, PNG, WebP): C2PA signed with a throwaway CA,
generator parameters, SD watermarks, camera EXIF, XMP/IPTC source types, stripped copies and
malformed metadata; the fusion rules; and the scan / provenance commands."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import provenance_files as pf
from synthscan.cli.main import app
from synthscan.provenance import Hint, Provenance, Signal, fuse, read_provenance
from synthscan.provenance import watermark as wm
from synthscan.provenance.markers import _table
from synthscan.result import ScanResult

ENV = {"COLUMNS": "400", "NO_COLOR": "1"}
FORMATS = ["JPEG", "PNG", "WEBP"]


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return pf.picture(256, 256)


def encoded(rgb, fmt):
    return pf.encode(rgb, fmt, **({"quality": 92} if fmt == "JPEG" else {}))


def statuses(provenance: Provenance) -> dict[str, str]:
    return {name: s.status for name, s in provenance.signals.items()}


# --- C2PA ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_c2pa_ai_declared_decides_against_the_pixels(rgb, fmt):
    data = pf.c2pa_signed(encoded(rgb, fmt), fmt, pf.AI_TYPE)
    p = read_provenance(data)
    c2pa = p.signals["c2pa"]
    assert (c2pa.status, c2pa.claims) == ("present", "generated")
    assert c2pa.details["trusted"] is False and "not on a trust list" in c2pa.reason
    assert c2pa.details["actions"][0] == {"action": "c2pa.created", "digital_source_type": "trainedAlgorithmicMedia",
                                          "software_agent": None}
    assert c2pa.details["claim_generator"] == ["synthscan-tests 1.0"]
    fusion = fuse(p, "real", 0.02)
    assert (fusion.verdict, fusion.source, fusion.rule) == ("ai-generated", "c2pa", "c2pa-generated")
    assert fusion.conflict == "c2pa says generated, pixels say real (p_fake 0.02)"
    assert fusion.pixel_verdict == "real"


def test_c2pa_trust_list_and_a_missing_one(rgb, tmp_path):
    data = pf.c2pa_signed(encoded(rgb, "JPEG"), "JPEG", pf.AI_TYPE)
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(pf.test_ca()[2])
    trusted = read_provenance(data, trust_anchors=str(anchors)).signals["c2pa"]
    assert trusted.details["trusted"] is True and "(trusted signer)" in trusted.reason
    missing = read_provenance(data, trust_anchors=str(tmp_path / "nope.pem")).signals["c2pa"]
    assert missing.status == "unchecked" and "nope.pem" in missing.reason


def test_c2pa_camera_moves_only_borderline_pixels(rgb):
    p = read_provenance(pf.c2pa_signed(encoded(rgb, "PNG"), "PNG", pf.CAMERA_TYPE))
    assert p.signals["c2pa"].claims == "capture"
    moved = fuse(p, "uncertain", 0.5)
    assert (moved.verdict, moved.source, moved.rule) == ("real", "pixels+metadata", "c2pa-capture")
    kept = fuse(p, "ai-generated", 0.97)
    assert (kept.verdict, kept.source) == ("ai-generated", "pixels")
    assert kept.conflict == "c2pa says camera, pixels say ai-generated (p_fake 0.97)"


@pytest.mark.parametrize("fmt", FORMATS)
def test_c2pa_tampered_copy_fails_validation(rgb, fmt):
    data = pf.tampered(pf.c2pa_signed(encoded(rgb, fmt), fmt, pf.AI_TYPE))
    p = read_provenance(data)
    c2pa = p.signals["c2pa"]
    assert c2pa.status == "invalid" and c2pa.claims == "none"
    assert any(f.startswith("assertion.dataHash.mismatch") for f in c2pa.details["failures"])
    fusion = fuse(p, "real", 0.1)
    assert fusion.source == "pixels" and "C2PA manifest invalid" in fusion.reason


def test_c2pa_bad_store_is_invalid_not_a_crash(rgb):
    p = read_provenance(pf.broken_c2pa_store(pf.c2pa_signed(encoded(rgb, "JPEG"), "JPEG", pf.AI_TYPE)))
    assert p.signals["c2pa"].status == "invalid" and "cannot be read" in p.signals["c2pa"].reason


# --- generator parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [pf.webui_png, pf.webui_jpeg, lambda rgb: pf.webui_jpeg(rgb, "WEBP")],
                         ids=["png-text", "jpeg-usercomment", "webp-usercomment"])
def test_webui_parameters(rgb, make):
    p = read_provenance(make(rgb))
    g = p.signals["generator"]
    assert (g.status, g.claims) == ("present", "generated")
    assert {k: g.details[k] for k in ("tool", "model", "sampler", "steps", "seed", "size", "cfg_scale")} == {
        "tool": "Stable Diffusion WebUI", "model": "v1-5-pruned-emaonly", "sampler": "DPM++ 2M Karras",
        "steps": "28", "seed": "1234567", "size": "512x512", "cfg_scale": "6.5"}
    assert "prompt" not in g.details and g.details["prompt_chars"] == len("a red fox in the snow, golden hour")
    fusion = fuse(p, "real", 0.1)
    assert (fusion.verdict, fusion.source, fusion.rule) == ("ai-generated", "metadata", "generator-parameters")


def test_comfyui_workflow_and_show_prompts(rgb):
    g = read_provenance(pf.comfyui_png(rgb), show_prompts=True).signals["generator"]
    assert g.details.items() >= {"tool": "ComfyUI", "model": "sd_xl_base_1.0.safetensors", "sampler": "euler",
                              "steps": 20, "seed": 42, "cfg_scale": 7.0, "size": "1024x1024",
                              "prompt": "a lighthouse at dusk"}.items()


def test_other_generators(rgb):
    nai = pf.png_with_text(rgb, {"Software": "NovelAI", "Source": "NovelAI Diffusion V4",
                                 "Comment": json.dumps({"steps": 23, "sampler": "k_euler", "seed": 7, "scale": 5,
                                                        "width": 832, "height": 1216, "prompt": "x"})})
    invoke = pf.png_with_text(rgb, {"invokeai_metadata": json.dumps({"model": {"name": "juggernaut"}, "steps": 30,
                                                                      "seed": 9, "scheduler": "dpmpp_2m"})})
    midjourney = pf.png_with_text(rgb, {"Description": "a cat --v 6 Job ID: 0b3c1f2e-1234-4abc-9def-001122334455"})
    found = {name: read_provenance(d).signals["generator"].details for name, d in
             (("nai", nai), ("invoke", invoke), ("mj", midjourney))}
    assert found["nai"]["tool"] == "NovelAI" and found["nai"]["size"] == "832x1216" and found["nai"]["seed"] == 7
    assert found["invoke"]["model"] == "juggernaut" and found["invoke"]["sampler"] == "dpmpp_2m"
    assert found["mj"]["job_id"] == "0b3c1f2e-1234-4abc-9def-001122334455"


# --- watermarks ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("scheme", "fmt", "options"), [
    ("v1", "PNG", {}), ("xl", "JPEG", {"quality": 95, "subsampling": 0}), ("v1", "WEBP", {})])
def test_sd_watermark_decoded(rgb, scheme, fmt, options):
    data = pf.encode(pf.sd_watermarked(rgb, scheme), fmt, **options)
    p = read_provenance(data)
    mark = p.signals["watermark"]
    assert (mark.status, mark.claims) == ("present", "generated")
    assert mark.details["scheme"].startswith("sdxl" if scheme == "xl" else "stable-diffusion-v1")
    assert mark.details["chance"] < wm.MAX_CHANCE
    fusion = fuse(p, "real", 0.1)
    assert (fusion.verdict, fusion.source) == ("ai-generated", "watermark")


@pytest.mark.parametrize(("height", "width", "scheme"), [(256, 256, "v1"), (264, 520, "xl"), (300, 1000, "v1")])
def test_vectorised_votes_equal_the_package_decoder(height, width, scheme):
    from imwatermark import WatermarkDecoder

    marked = pf.sd_watermarked(pf.picture(height, width, seed=3), scheme)
    bgr = np.ascontiguousarray(marked[:, :, ::-1])
    for length in (136, 48):
        package = np.asarray(WatermarkDecoder("bits", length).decode(bgr, "dwtDct"), dtype=np.uint8)
        assert (wm.message_bits(wm.dwtdct_votes(marked), length) == package).all()


def test_watermark_absent_small_and_extension_point(rgb, monkeypatch):
    assert read_provenance(encoded(rgb, "PNG")).signals["watermark"].status == "absent"
    assert read_provenance(encoded(rgb[:100, :100], "PNG")).signals["watermark"].status == "unchecked"
    monkeypatch.setattr(wm, "DECODERS", dict(wm.DECODERS))
    wm.register_decoder("test-mark", lambda pixels: wm.WatermarkMatch("test-mark", 1.0, "a test tool"))
    assert read_provenance(encoded(rgb, "PNG")).signals["watermark"].details["decoder"] == "test-mark"


def test_missing_packages_are_reported_not_raised(rgb, monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now raises ImportError
    monkeypatch.setattr(wm, "REQUIRES", {"stable-diffusion": "no_such_module_here"})
    p = read_provenance(encoded(rgb, "PNG"))
    assert p.signals["c2pa"].status == "unchecked" and "pip install" in p.signals["c2pa"].reason
    assert p.signals["watermark"].status == "unchecked" and "no_such_module_here" in p.signals["watermark"].reason


# --- EXIF / XMP / IPTC --------------------------------------------------------------------------

def test_camera_exif_never_turns_a_confident_pixel_verdict(rgb):
    p = read_provenance(pf.camera_jpeg(rgb))
    meta = p.signals["metadata"]
    assert (meta.claims, meta.details["make"], meta.details["model"]) == ("capture", "Canon", "Canon EOS R6")
    assert meta.details["captured"] == "2024:05:01 10:20:30"
    assert any(h.name == "camera-exif" and h.weight < 0 for h in p.hints)
    fusion = fuse(p, "ai-generated", 0.9)
    assert fusion.verdict == "ai-generated" and fusion.conflict == "metadata says camera, pixels say ai-generated (p_fake 0.90)"


@pytest.mark.parametrize("fmt", FORMATS)
def test_xmp_digital_source_type(rgb, fmt):
    ai = read_provenance(pf.with_xmp(rgb, fmt, pf.xmp_packet(pf.AI_TYPE))).signals["metadata"]
    assert (ai.claims, ai.details["digital_source_type"]) == ("generated", pf.AI_TYPE)
    camera = read_provenance(pf.with_xmp(rgb, fmt, pf.xmp_packet(pf.CAMERA_TYPE))).signals["metadata"]
    assert camera.claims == "capture"
    tool = read_provenance(pf.with_xmp(rgb, fmt, pf.xmp_packet(creator_tool="Adobe Firefly"))).signals["metadata"]
    assert tool.claims == "generated" and tool.details["markers"][0]["tool"] == "Adobe Firefly"


def test_iptc_caption_marker(rgb):
    p = read_provenance(pf.with_iptc(encoded(rgb, "JPEG"), "Imagined with AI", program="Meta AI"))
    meta = p.signals["metadata"]
    assert meta.claims == "generated" and meta.details["iptc_caption"] == "Imagined with AI"
    assert fuse(p, "uncertain", 0.5).rule == "metadata-generated"


def test_markers_table_has_a_source_for_every_entry():
    table = _table()
    for entry in table["markers"] + table["digital_source_types"]:
        assert entry["source"].strip() and entry["claims"] in {"generated", "capture", "edited"}
    assert {m["field"] for m in table["markers"]} <= {"software", "claim_generator", "text"}


# --- stripped and malformed files ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda rgb: pf.c2pa_signed(encoded(rgb, "JPEG"), "JPEG", pf.AI_TYPE), pf.webui_png, pf.comfyui_png,
    pf.camera_jpeg, lambda rgb: pf.with_xmp(rgb, "WEBP", pf.xmp_packet(pf.AI_TYPE))],
    ids=["c2pa", "webui", "comfyui", "camera", "xmp"])
def test_stripped_copies_lose_every_claim(rgb, make):
    p = read_provenance(pf.stripped(make(rgb)))
    assert {n: s for n, s in statuses(p).items() if n != "hints"} == dict.fromkeys(
        ("c2pa", "metadata", "generator", "watermark"), "absent")
    assert fuse(p, "real", 0.2).source == "pixels"


def test_malformed_metadata_gives_per_signal_errors(rgb):
    broken = read_provenance(pf.broken_xmp(rgb, "JPEG")).signals["metadata"]
    assert broken.status == "invalid" and "XMP is not well-formed" in broken.reason
    offsets = read_provenance(pf.exif_wrong_offsets(rgb)).signals["metadata"]
    assert offsets.status == "invalid" and "EXIF" in offsets.reason
    cut = json.dumps(pf.COMFY_PROMPT)[:80]
    truncated = read_provenance(pf.png_with_text(rgb, {"prompt": cut})).signals["generator"]
    assert truncated.status == "invalid" and "'prompt'" in truncated.reason
    huge = read_provenance(pf.png_with_text(rgb, {"parameters": "Steps: 1, " * 150_000})).signals["generator"]
    assert huge.status == "invalid" and "exceeds" in huge.reason
    for data in (pf.truncated_text_chunk(rgb), pf.oversized_text_chunk(rgb)):  # the container itself is broken
        p = read_provenance(data)
        assert p.signals["metadata"].status == "invalid" and p.signals["generator"].status == "invalid"


# --- fusion rules -------------------------------------------------------------------------------

def hinted(*weights: float) -> Provenance:
    signals = {n: Signal.absent(n, "") for n in ("c2pa", "metadata", "generator", "watermark")}
    return Provenance(signals=signals, hints=[Hint(name=f"h{i}", weight=w, reason=f"hint {i}") for i, w in enumerate(weights)])


def test_weak_hints_only_move_borderline_verdicts():
    assert (fuse(hinted(0.3, 0.3), "uncertain", 0.5).verdict, fuse(hinted(0.3, 0.3), "uncertain", 0.5).source) == (
        "ai-generated", "pixels+metadata")
    assert fuse(hinted(-0.3, -0.3), "uncertain", 0.5).verdict == "real"
    assert fuse(hinted(0.3), "uncertain", 0.5).verdict == "uncertain"  # below HINT_MOVE
    assert fuse(hinted(0.3, 0.3), "real", 0.1).verdict == "real"
    assert fuse(hinted(-0.3, -0.3), "ai-generated", 0.9).verdict == "ai-generated"


# --- scan, CLI, report --------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path, rgb):
    root = tmp_path / "prov"
    root.mkdir()
    made = {"webui.png": pf.webui_png(rgb), "ai.jpg": pf.c2pa_signed(encoded(rgb, "JPEG"), "JPEG", pf.AI_TYPE),
            "mark.png": pf.encode(pf.sd_watermarked(rgb), "PNG"), "plain.webp": encoded(rgb, "WEBP"),
            "offsets.jpg": pf.exif_wrong_offsets(rgb), "stripped.png": pf.stripped(pf.webui_png(rgb))}
    for name, data in made.items():
        (root / name).write_bytes(data)
    return root


def test_scan_fuses_and_no_metadata_keeps_pixels(files, tiny_model):
    from synthscan.scanning import Scanner

    paths = sorted(str(p) for p in files.iterdir())
    fused = {r.path.rsplit("/", 1)[-1]: r for r in Scanner(tiny_model).scan_paths(paths)}
    pixels = {r.path.rsplit("/", 1)[-1]: r for r in Scanner(tiny_model, provenance=False).scan_paths(paths)}
    assert {n: r.verdict_source for n, r in fused.items()} == {
        "ai.jpg": "c2pa", "mark.png": "watermark", "webui.png": "metadata", "plain.webp": "pixels", "offsets.jpg": "pixels",
        "stripped.png": "pixels"}
    for name, result in fused.items():
        assert result.ok and result.p_fake == pixels[name].p_fake
        assert result.provenance.fusion.pixel_verdict == pixels[name].verdict
        assert pixels[name].verdict_source == "pixels" and pixels[name].provenance is None
    assert {fused[n].verdict for n in ("ai.jpg", "mark.png", "webui.png")} == {"ai-generated"}
    assert fused["offsets.jpg"].provenance.signals["metadata"].status == "invalid"


def test_narrative_names_the_deciding_signal(files, tiny_model):
    from synthscan.provenance.attach import attach_provenance

    result = ScanResult(path=str(files / "webui.png"), p_fake=0.1, verdict="real", threshold=0.5,
                        explanation={"narrative": {"summary": "The detector gives a 10% probability."}})
    attach_provenance(result, None, {})
    summary = result.explanation.narrative.summary
    assert summary.startswith("The detector gives") and "decided by metadata: Stable Diffusion WebUI" in summary
    assert "Conflict: metadata says generated, pixels say real" in summary
    assert [w.code for w in result.warnings] == ["provenance-conflict"]



def test_vlm_narrator_is_told_the_provenance(files, tiny_model):
    """The scanner reads provenance before explaining, so a VLM's prompt carries it."""
    from synthscan.explain.vlm import ChatNarrator
    from synthscan.scanning import Scanner

    class Recording(ChatNarrator):
        model_name = "recording"
        prompts: list[str] = []

        def complete(self, image, turns):
            self.prompts.append(turns[0]["text"])
            return '{"artifacts": [], "summary": "Its metadata names Stable Diffusion WebUI."}'

    narrator = Recording()
    scanner = Scanner(tiny_model, explain={"maps": "none", "narrator": narrator})
    [webui, plain] = scanner.scan_paths([str(files / "webui.png"), str(files / "plain.webp")])
    assert "decided by metadata: Stable Diffusion WebUI" in narrator.prompts[0]
    assert "rests on the pixels" in narrator.prompts[1]
    assert webui.explanation.narrative.source == "vlm:recording"
    assert webui.explanation.narrative.summary == "Its metadata names Stable Diffusion WebUI."  # not appended twice
    template = Scanner(tiny_model, explain={"maps": "none"}).scan_paths([str(files / "webui.png")])
    assert next(template).explanation.narrative.summary.count("decided by metadata") == 1

def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV, catch_exceptions=False)


def test_provenance_command(files):
    table = run("provenance", files / "webui.png", files / "ai.jpg", files / "missing.png")
    assert table.exit_code == 1
    assert "ai-generated by metadata: Stable Diffusion WebUI" in table.output and "no such file" in table.output
    rows = json.loads(run("provenance", "-f", "json", "--show-prompts", files / "webui.png").output)
    assert rows[0]["signals"]["generator"]["details"]["prompt"] == "a red fox in the snow, golden hour"
    assert rows[0]["fusion"]["source"] == "metadata"


def test_scan_command_json_and_report(files, tiny_model_path, tmp_path):
    out = run("scan", "-m", tiny_model_path, "-f", "json", "--report", tmp_path / "r.html", files / "webui.png")
    record = json.loads(out.stdout if hasattr(out, "stdout") else out.output)[0]
    assert record["verdict_source"] == "metadata" and record["provenance"]["signals"]["generator"]["status"] == "present"
    html = (tmp_path / "r.html").read_text()
    assert "Decided by <strong>metadata</strong>" in html and "Provenance signals" in html
    plain = json.loads(run("scan", "-m", tiny_model_path, "-f", "json", "--no-metadata", files / "webui.png").output)[0]
    assert plain["verdict_source"] == "pixels" and "provenance" not in plain
    assert run("scan", "-m", tiny_model_path, "--no-metadata", "--show-prompts", files / "webui.png").exit_code == 2
