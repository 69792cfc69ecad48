"""Leave-generator-out protocol: how a recipe does on generators and photo collections it never saw.

This is the model-selection rule for the default model (issue 10), not the random val split.

Folds. Every image of the manifest's 256 track belongs to a *lineage*: its generator, with
derivatives of one model joined (every Stable Diffusion 1.x/2.x/XL fine-tune is "stable-diffusion",
all FLUX variants "flux", GPT-4o image / GPT Image / DALL-E "openai", every StyleGAN2 set
"stylegan2", ...), and for real photos its collection (the ForenSynths reals are one collection).
Lineages are dealt into K folds (largest first, to the fold with the fewest images), fakes and reals
separately, so each fold holds out some generators *and* some photo collections. Fold k's model
is trained on the train-split images of the other folds' lineages only, and tested on every image
(train and val split) of fold k's lineages: nothing of a test generator or collection, not even a
fine-tune of it, was seen in training.

Threshold. The shipped rule is "a real-photo false-positive rate of 3% on collections outside
training": fold k is scored at the threshold that gives 3% FPR on the *other* folds' out-of-fold
reals, so no fold's own reals choose its threshold. The shipped model's calibration and threshold
come from the pooled out-of-fold scores (see --ship).

Web-processed copies. Each test image is also scored after a seeded web copy (random resize
0.5-1.0x, then JPEG or WebP at quality 70-90, `synthscan.data.augment.web_copy`), the way images
reach users after a re-post.

Candidates: texture-gbm recipes (feature groups, web-copy augmentation of the training set,
generator-balanced weights, trees); `clip-blocks` (a linear probe on the CLS tokens of all 12
blocks of the frozen CLIP ViT-B/16 INT8 tower, `synthscan.detectors.clip_blocks`), optionally
trained with web copies (or JPEG-only copies) too, fed a native-pixel crop instead of the
resized image, or fed every input re-encoded as JPEG first; a real-only
model (a Gaussian density of real photos' CLIP tokens, trained without fakes); zed-style's
coding-cost features (a causal pixel predictor trained per fold on that fold's reals), scored by a
density of reals or by a small head; fusions, a
weighted sum of other candidates' out-of-fold logits, each divided by its standard deviation; and
routed pairs (`Routed`): a head for images without a low-quality JPEG history and a head trained on
JPEG or re-post copies for the others, chosen per image from its pixels as the shipped default does.
Tile features, CLIP tokens, JPEG-quality estimates and zed-style predictors and features are cached
under --cache, so trying a recipe again costs only its fits.

    python benchmarks/generalise.py --data ../shared/synthbench/manifest.csv
    python benchmarks/generalise.py --data ../shared/synthbench/manifest.csv --candidates clip-blocks \
        --ship src/synthscan/weights/synthscan-default --version 1.0.0
    python benchmarks/generalise.py --data ../shared/synthbench/manifest.csv \
        --candidates clip-blocks-jpeg-repost-recompressed --ship src/synthscan/weights/synthscan-default-recompressed \
        --version 1.1.0 --route-from src/synthscan/weights/synthscan-default.json

Needs ../shared/synthbench (not available in CI): a benchmark, not a test. Writes
docs/generalise.{md,json} (--out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import shlex
import sys
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file
from scipy.special import logit
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthscan.data.augment import gaussian_blur, jpeg, web_copy
from synthscan.data.datasets import read_manifest
from synthscan.detectors.base import CalibratedModel, Calibration, ModelInfo
from synthscan.detectors.clip_blocks import ClipBlocksConfig, ClipBlocksDetector
from synthscan.detectors.jpeg_history import estimate_jpeg_quality
from synthscan.detectors.scoring import RecompressedRoute
from synthscan.detectors.texture_features import tile_features
from synthscan.detectors.texture_gbm import TextureGBMConfig, TextureGBMDetector
from synthscan.detectors.tiling import make_tiles
from synthscan.detectors.zed_style import ZedStyleConfig, ZedStyleDetector
from synthscan.evaluate.metrics import apply_platt, choose_uncertain_band, fit_platt
from synthscan.io import load_image
from synthscan.result import Decision

TARGET_FPR = 0.03
FORENSIC = ("residual", "spam", "chroma_spam", "grid_phase", "spectrum", "colour")
# Lineage rules, first match wins: generator name pattern -> lineage.
LINEAGES = [
    (r"^(sd|sdxl|dreamshaper|albedobase|sd15|sd1|sd2)", "stable-diffusion"),
    (r"^flux", "flux"),
    (r"^(gpt-|dalle)", "openai"),
    (r"^midjourney", "midjourney"),
    (r"^stylegan2", "stylegan2"),
    (r"biggan", "biggan"),
    (r"cyclegan", "cyclegan"),
    (r"^kandinsky", "kandinsky"),
    (r"^qwen-image", "qwen-image"),
    (r"^(edge2image|mask2image)", "pix2pix-style"),
    (r"^forensynths-.*-real$", "forensynths-real"),
    (r"^(phototourism|sacre-coeur)", "flickr-tourism"),
]


def lineage(generator: str) -> str:
    for pattern, name in LINEAGES:
        if re.search(pattern, generator):
            return name
    return generator


@dataclass(frozen=True)
class Recipe:
    """A texture-gbm recipe as the protocol tries it."""

    features: tuple[str, ...] = FORENSIC
    web_copies: bool = False  # add one web copy of every training image (both classes)
    balanced: bool = False  # weight 1/sqrt(lineage size), equal mass per class
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    l2_regularization: float = 0.0
    notes: str = ""

    def gbm(self, seed: int = 0) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization, random_state=seed)


@dataclass(frozen=True)
class ClipProbe:
    """clip-blocks: standardisation + logistic regression on the 12 blocks' CLS tokens."""

    C: float = 0.1
    balanced: bool = False
    web_copies: bool = False  # also train on one web copy of every training image (both classes)
    jpeg_copies: bool = False  # also train on one JPEG 60-95 copy of every training image (both classes)
    # also train on one re-post copy of every training image: a mild filter (an unsharp mask as
    # platforms apply, a slight blur, or none) and then JPEG 60-95 (both classes)
    repost_copies: bool = False
    native: bool = False  # a 224 px crop of the native pixels (upscaled only when smaller), not the resized image
    jpeg_quality: int | None = None  # re-encode every input at this JPEG quality first (InputPolicy.jpeg_quality)
    # Measured on JPEG 60-95 copies of the held-out images (its "clean" columns): the head a Routed
    # candidate gives the images it finds re-compressed. Trained only on such copies of the training
    # images, unless jpeg_copies or web_copies add them to the clean images.
    recompressed: bool = False
    train_on: tuple[str, ...] = ()  # these image variants instead of the ones the flags above give
    notes: str = ""

    def config(self) -> ClipBlocksConfig:
        config = ClipBlocksConfig(C=self.C)
        if self.native:
            config.input = config.input.model_copy(update={"mode": "tiles", "small_image": "upscale"})
        if self.jpeg_quality:
            config.input = config.input.model_copy(update={"jpeg_quality": self.jpeg_quality})
        return config

    def train_variants(self) -> tuple[str, ...]:
        """The image variants whose tokens the probe is trained on."""
        if self.train_on:
            return self.train_on
        if self.recompressed and not (self.jpeg_copies or self.web_copies or self.repost_copies):
            return ("jpeg-train",)
        return ("clean",) + (("web-train",) if self.web_copies else ()) + (("jpeg-train",) if self.jpeg_copies else ()) \
            + (("repost-train",) if self.repost_copies else ())

    @property
    def eval_variant(self) -> str:
        """The variant of the held-out images its "clean" columns (and its threshold) are measured on."""
        return "jpeg-train" if self.recompressed else "clean"


@dataclass(frozen=True)
class RealOnly:
    """A density of real photos only, no fakes: features standardised, reduced by PCA and modelled
    as one Gaussian (Ledoit-Wolf covariance); the score is the log Mahalanobis distance, i.e. how
    unlike the training photos an image is. features "clip": the 12 blocks' CLS tokens; "forensic":
    the texture model's forensic tile features (noise residual, SPAM, grid phase, spectrum, colour;
    in the spirit of forensic self-descriptions), one density over tiles, an image's score the mean
    over its tiles."""

    features: str = "clip"
    components: int = 128
    notes: str = ""


@dataclass(frozen=True)
class Zed:
    """zed-style (`synthscan.detectors.zed_style`): per fold, its causal pixel predictor is trained
    on that fold's training reals only (`steps` Adam steps on batches of 16 random 64 px crops, at a
    random resolution level), then gives every image its coding-cost features (NLL, expected bits
    and their gap at 3 levels, over the whole image). A seeded sample of `head_images` training
    images of the other folds is scored too. real_only: the score is the log Mahalanobis distance
    to a Gaussian of the sample's reals' features (no fakes anywhere, ZED's setting); otherwise a
    logistic regression on the features, fitted on the whole sample. The predictor was trained on
    those reals too, so they cost it slightly fewer bits than unseen photos would. The protocol
    scores the whole image at once; the detector averages tiles of 128 px."""

    real_only: bool = True
    steps: int = 1000
    head_images: int = 500
    notes: str = ""


@dataclass(frozen=True)
class Routed:
    """Two candidates, one per JPEG history: an image whose pixels show a last JPEG save below
    `below_quality` (`synthscan.detectors.jpeg_history`, the shipped router) goes to `recompressed`
    (a `ClipProbe(recompressed=True)`), every other image to `original`. Each part keeps its own
    3%-FPR threshold, both taken from the other folds' out-of-fold reals (the original part's on
    clean images, the recompressed part's on JPEG copies): a routed image's logit is moved by the
    difference of the two, so one threshold compares both. synthbench's images are JPEG 95, so
    clean images stay with `original`; web copies saved as JPEG 70-90 go to `recompressed`."""

    original: str
    recompressed: str
    below_quality: int = 93
    notes: str = ""


@dataclass(frozen=True)
class Fusion:
    """A weighted sum of other candidates' out-of-fold logits, each divided by its std."""

    parts: tuple[tuple[str, float], ...]
    notes: str = ""


CANDIDATES = {
    "recipe-0.4": Recipe(notes="the 0.4.0 recipe (forensic groups, no augmentation), on today's data"),
    "web-aug": Recipe(web_copies=True, notes="+ one web copy of each training image"),
    "balanced": Recipe(balanced=True, notes="+ lineage-balanced weights"),
    "web-aug-balanced": Recipe(web_copies=True, balanced=True, notes="+ web copies + balanced weights"),
    "web-aug-balanced-reg": Recipe(web_copies=True, balanced=True, max_iter=300, learning_rate=0.05,
                                   max_leaf_nodes=15, l2_regularization=1.0,
                                   notes="+ web copies + balanced + smaller, slower, regularised trees"),
    "clip-blocks": ClipProbe(notes="linear probe (C 0.1) on the CLS tokens of all 12 blocks of frozen CLIP ViT-B/16 (INT8 ONNX)"),
    "clip-blocks-C0.01": ClipProbe(C=0.01, notes="the same, stronger regularisation (C 0.01)"),
    "clip-blocks-balanced": ClipProbe(balanced=True, notes="clip-blocks with lineage-balanced weights (1/sqrt(lineage size))"),
    "clip-blocks-web": ClipProbe(web_copies=True, notes="clip-blocks + one web copy of each training image"),
    "clip-blocks-native": ClipProbe(native=True, notes="clip-blocks on a 224 px crop of the native pixels, not the resized image"),
    "clip-blocks-jpeg-aug": ClipProbe(jpeg_copies=True, notes="clip-blocks + one JPEG copy (quality 60-95, no resize) "
                                                              "of each training image"),
    "clip-blocks-recompressed": ClipProbe(recompressed=True, notes="clip-blocks trained only on one JPEG 60-95 copy of "
                                          "each training image; its clean columns are JPEG 60-95 copies of the held-out "
                                          "images (the head for re-compressed images)"),
    "clip-blocks-jpeg-aug-recompressed": ClipProbe(jpeg_copies=True, recompressed=True, notes=(
        "clip-blocks-jpeg-aug (clean + one JPEG 60-95 copy of each training image); its clean columns are JPEG "
        "60-95 copies of the held-out images")),
    "clip-blocks-repost-recompressed": ClipProbe(repost_copies=True, recompressed=True, notes=(
        "clip-blocks + one re-post copy (unsharp mask, slight blur or neither, then JPEG 60-95) of each training "
        "image; its clean columns are JPEG 60-95 copies of the held-out images")),
    "clip-blocks-recompressed-C0.03": ClipProbe(recompressed=True, C=0.03, notes="clip-blocks-recompressed, C 0.03"),
    "clip-blocks-recompressed-C0.3": ClipProbe(recompressed=True, C=0.3, notes="clip-blocks-recompressed, C 0.3"),
    "clip-blocks-repost-only-recompressed": ClipProbe(recompressed=True, train_on=("repost-train",), notes=(
        "clip-blocks trained only on one re-post copy (unsharp mask, slight blur or neither, then JPEG 60-95) of each "
        "training image; its clean columns are JPEG 60-95 copies of the held-out images")),
    "clip-blocks-jpeg-repost-recompressed": ClipProbe(recompressed=True, train_on=("jpeg-train", "repost-train"), notes=(
        "clip-blocks trained on one JPEG 60-95 copy and one re-post copy of each training image (no clean images); "
        "its clean columns are JPEG 60-95 copies of the held-out images")),
    "clip-blocks-routed-repost": Routed("clip-blocks", "clip-blocks-repost-recompressed", notes=(
        "clip-blocks, but images last saved as JPEG below quality 93 go to clip-blocks-repost-recompressed")),
    "clip-blocks-routed-aug": Routed("clip-blocks", "clip-blocks-jpeg-aug-recompressed", notes=(
        "clip-blocks, but images last saved as JPEG below quality 93 go to clip-blocks-jpeg-aug-recompressed")),
    "clip-blocks-routed": Routed("clip-blocks", "clip-blocks-jpeg-repost-recompressed", notes=(
        "clip-blocks, but images last saved as JPEG below quality 93 (read from their pixels) go to "
        "clip-blocks-jpeg-repost-recompressed, at its own 3%-FPR threshold (the shipped default)")),
    "clip-blocks-routed-jpeg": Routed("clip-blocks", "clip-blocks-recompressed", notes=(
        "clip-blocks, but images last saved as JPEG below quality 93 go to clip-blocks-recompressed")),
    "clip-blocks-jpeg75": ClipProbe(jpeg_quality=75, notes="clip-blocks on every input re-encoded as JPEG 75 first, "
                                                            "in training and in use (so re-posts keep their score)"),
    "clip-real-only": RealOnly(notes="real photos only: Gaussian density of PCA-128 CLIP block tokens, "
                                     "score = log Mahalanobis distance"),
    "forensic-real-only": RealOnly(features="forensic", components=64,
                                   notes="real photos only: Gaussian density of PCA-64 forensic tile features, "
                                         "score = mean log Mahalanobis distance over tiles"),
    "zed-real-only": Zed(notes="real photos only: ZED-style causal pixel predictor trained on reals; Gaussian density "
                               "of its coding-cost features (NLL, expected bits, gap at 3 levels)"),
    "zed-head": Zed(real_only=False, notes="the same features, a logistic regression fitted with fakes"),
    "clip-blocks+zed": Fusion((("clip-blocks", 0.8), ("zed-head", 0.2)),
                              notes="0.8 x clip-blocks + 0.2 x zed-head (std-normalised logits; weights fixed beforehand)"),
    "clip-blocks+real-only": Fusion((("clip-blocks", 0.8), ("clip-real-only", 0.2)),
                                    notes="0.8 x clip-blocks + 0.2 x clip-real-only (std-normalised logits; weights fixed beforehand)"),
    "clip-blocks+texture": Fusion((("clip-blocks", 0.9), ("recipe-0.4", 0.1)),
                                  notes="0.9 x clip-blocks + 0.1 x recipe-0.4 (std-normalised logits)"),
}


# --------------------------------------------------------------------------------------- features
@dataclass
class FeatureSet:
    """Tile feature rows of many images: rows[index == i] are image i's tiles."""

    rows: np.ndarray
    index: np.ndarray

    def image_logits(self, tile_logits: np.ndarray, n_images: int) -> np.ndarray:
        sums = np.bincount(self.index, weights=tile_logits, minlength=n_images)
        return sums / np.maximum(np.bincount(self.index, minlength=n_images), 1)


def _variant_image(path: str, variant: str) -> np.ndarray:
    rgb = load_image(path).rgb
    if variant == "clean":
        return rgb
    if variant == "jpeg-train":  # re-compression only, no resize: JPEG at quality 60-95
        rng = np.random.default_rng([3, zlib.crc32(path.encode())])
        return jpeg(rgb, int(rng.integers(60, 96)))
    if variant == "repost-train":  # a platform's filter, then JPEG 60-95; no resize
        rng = np.random.default_rng([4, zlib.crc32(path.encode())])
        kind, quality = rng.integers(3), int(rng.integers(60, 96))
        if kind == 0:
            rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.UnsharpMask(
                radius=float(rng.uniform(0.5, 2.0)), percent=int(rng.integers(30, 151)), threshold=int(rng.integers(0, 4)))))
        elif kind == 1:
            rgb = gaussian_blur(rgb, float(rng.uniform(0.3, 1.0)))
        return jpeg(rgb, quality)
    seed = {"web-train": 2, "web-eval": 1}[variant]
    scale, quality = ((0.5, 1.5), (60, 100)) if variant == "web-train" else ((0.5, 1.0), (70, 90))
    rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
    return web_copy(rgb, rng, scale=scale, quality=quality)


def features(paths: list[str], variant: str, groups: tuple[str, ...], cache: Path) -> FeatureSet:
    key = hashlib.sha1(json.dumps([paths, variant, groups]).encode()).hexdigest()[:12]
    file = cache / f"features-{variant}-{key}.npz"
    if file.exists():
        data = np.load(file)
        return FeatureSet(data["rows"], data["index"])
    policy = TextureGBMConfig().input
    rows, index = [], []
    t0 = time.time()
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(paths), 64):
            chunk = list(pool.map(lambda p: _variant_image(p, variant), paths[start : start + 64]))
            crops = [make_tiles(img, policy).crops for img in chunk]
            rows.append(tile_features(np.concatenate(crops), groups).astype(np.float32))
            index += [start + i for i, c in enumerate(crops) for _ in range(len(c))]
            print(f"\r  {variant}: {start + len(chunk)}/{len(paths)} images, {time.time() - t0:.0f}s",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    out = FeatureSet(np.concatenate(rows), np.array(index))
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, rows=out.rows, index=out.index)
    return out


def clip_tokens(paths: list[str], variant: str, cache: Path, config: ClipBlocksConfig | None = None) -> np.ndarray:
    """(N, 12, 768) CLS tokens of every image, as a clip-blocks detector with `config` computes them."""
    detector = ClipBlocksDetector(config or ClipBlocksConfig())
    policy = detector.config.input
    # The resize policy's key is the one the first caches were written under.
    parts = [paths, variant, detector.config.tower]
    if policy.mode != "resize" or policy.jpeg_quality:
        parts.append(policy.model_dump(mode="json"))
    key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
    file = cache / f"clip-tokens-{variant}-{key}.npy"
    if file.exists():
        return np.load(file)
    out, t0 = [], time.time()
    for start in range(0, len(paths), 32):
        out.append(detector.tokens_of_images(_variant_image(p, variant) for p in paths[start : start + 32]))
        print(f"\r  clip {variant}: {start + len(out[-1])}/{len(paths)} images, {time.time() - t0:.0f}s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, tokens := np.concatenate(out))
    return tokens


# ------------------------------------------------------------------------------------------ folds
def make_folds(lineages: list[str], labels: np.ndarray, k: int) -> dict[str, int]:
    """Lineage -> fold, largest lineages first to the fold with the fewest images, per class."""
    fold_of: dict[str, int] = {}
    for label in (1, 0):
        sizes = Counter(g for g, y in zip(lineages, labels) if y == label)
        load = [0] * k
        for name, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
            fold = int(np.argmin(load))
            fold_of[name] = fold
            load[fold] += n
    return fold_of


def weights_for(lineages: np.ndarray, labels: np.ndarray, balanced: bool) -> np.ndarray:
    if not balanced:
        return np.ones(len(labels))
    size = Counter(lineages)
    w = np.array([1.0 / np.sqrt(size[g]) for g in lineages])
    for label in (0, 1):
        w[labels == label] *= len(labels) / 2 / w[labels == label].sum()
    return w


def fit_recipe(recipe: Recipe, sets: list[tuple[FeatureSet, np.ndarray]], image_weights: np.ndarray):
    """Fit the trees on the tile rows of `sets` (FeatureSet, image mask); tiles inherit the image's
    label and weight, divided by its tile count so every image weighs the same."""
    x, y, w = [], [], []
    for fs, mask in sets:
        keep = mask[fs.index]
        counts = np.bincount(fs.index, minlength=len(mask))
        x.append(fs.rows[keep])
        y.append(LABELS[fs.index[keep]])
        w.append(image_weights[fs.index[keep]] / counts[fs.index[keep]])
    return recipe.gbm().fit(np.concatenate(x), np.concatenate(y), sample_weight=np.concatenate(w))


def metrics(y: np.ndarray, logits: np.ndarray, threshold: float) -> dict:
    called = logits >= threshold
    fake_recall = float(called[y == 1].mean())
    real_fpr = float(called[y == 0].mean())
    return {
        "n_fake": int((y == 1).sum()), "n_real": int((y == 0).sum()),
        "ap": float(average_precision_score(y, logits)), "auc": float(roc_auc_score(y, logits)),
        "balanced_accuracy": (fake_recall + 1 - real_fpr) / 2, "fake_recall": fake_recall, "real_fpr": real_fpr,
    }


def fpr_threshold(real_logits: np.ndarray, fpr: float = TARGET_FPR) -> float:
    """The logit at or above which at most `fpr` of these reals lie."""
    return float(np.quantile(real_logits, 1 - fpr, method="higher")) + 1e-9


LABELS: np.ndarray  # set in main: 1 fake, 0 real, per image


@dataclass
class Bench:
    """What every candidate's protocol run shares."""

    samples: list
    folds: dict[str, int]
    k: int
    cache: Path
    def __post_init__(self):
        self.paths = [s.path for s in self.samples]
        self.lin = np.array([lineage(s.generator) for s in self.samples])
        self.fold = np.array([self.folds[g] for g in self.lin])
        self.is_train = np.array([s.split == "train" for s in self.samples])
        self.results: dict[str, dict] = {}  # name -> protocol result (fusions reuse their parts')


def recipe_oof(recipe: Recipe, bench: Bench) -> dict[str, np.ndarray]:
    variants = ("clean", "web-eval") + (("web-train",) if recipe.web_copies else ())
    feats = {v: features(bench.paths, v, recipe.features, bench.cache) for v in variants}
    n, w = len(bench.samples), weights_for(bench.lin, LABELS, recipe.balanced)
    oof = {"clean": np.full(n, np.nan), "web-eval": np.full(n, np.nan)}
    for f in range(bench.k):
        train_mask = bench.is_train & (bench.fold != f)
        sets = [(feats["clean"], train_mask)] + ([(feats["web-train"], train_mask)] if recipe.web_copies else [])
        gbm = fit_recipe(recipe, sets, w)
        for variant in oof:
            fs = feats[variant]
            oof[variant][bench.fold == f] = fs.image_logits(gbm.decision_function(fs.rows), n)[bench.fold == f]
    return oof


def probe_tokens(probe: ClipProbe, bench: Bench, train_mask: np.ndarray, tokens: dict[str, np.ndarray]):
    """The probe's training tokens, labels and weights: the clean images plus, with web_copies
    or jpeg_copies, one such copy of each."""
    w = weights_for(bench.lin, LABELS, probe.balanced)
    variants = probe.train_variants()
    return (np.concatenate([tokens[v][train_mask] for v in variants]), np.tile(LABELS[train_mask], len(variants)),
            np.tile(w[train_mask], len(variants)))


def clip_oof(probe: ClipProbe, bench: Bench) -> dict[str, np.ndarray]:
    variants = dict.fromkeys(("web-eval", probe.eval_variant) + probe.train_variants())
    tokens = {v: clip_tokens(bench.paths, v, bench.cache, probe.config()) for v in variants}
    oof = {v: np.full(len(bench.samples), np.nan) for v in ("clean", "web-eval")}
    sources = {"clean": probe.eval_variant, "web-eval": "web-eval"}
    for f in range(bench.k):
        train_mask = bench.is_train & (bench.fold != f)
        detector = ClipBlocksDetector(probe.config())
        x, y, w = probe_tokens(probe, bench, train_mask, tokens)
        detector.fit_tokens(x, y, sample_weight=w)
        for variant in oof:
            oof[variant][bench.fold == f] = detector.head_logits(tokens[sources[variant]][bench.fold == f]).numpy()
    return oof


def jpeg_qualities(bench: Bench, variant: str) -> np.ndarray:
    """The router's estimate per image of `variant` (0 where it finds no JPEG history), cached."""
    key = hashlib.sha1(json.dumps([bench.paths, variant]).encode()).hexdigest()[:12]
    file = bench.cache / f"jpeg-quality-{variant}-{key}.npy"
    if file.exists():
        return np.load(file)
    t0 = time.time()
    with ThreadPoolExecutor(2) as pool:
        out = np.array(list(pool.map(lambda p: estimate_jpeg_quality(_variant_image(p, variant)) or 0, bench.paths)))
    print(f"  jpeg history of {variant}: {time.time() - t0:.0f}s", file=sys.stderr)
    bench.cache.mkdir(parents=True, exist_ok=True)
    np.save(file, out)
    return out


def routed_oof(routed: Routed, bench: Bench) -> dict[str, np.ndarray]:
    for part in (routed.original, routed.recompressed):
        if part not in bench.results:
            bench.results[part] = run_protocol(part, bench)
    original, recompressed = bench.results[routed.original]["oof"], bench.results[routed.recompressed]["oof"]
    reals = LABELS == 0
    out = {}
    for variant in ("clean", "web-eval"):
        q = jpeg_qualities(bench, variant)
        to_head = (q > 0) & (q < routed.below_quality)
        print(f"  {routed.recompressed} scores {to_head.mean():.1%} of the {variant} images", file=sys.stderr)
        logits = original[variant].copy()
        for f in range(bench.k):
            others = (bench.fold != f) & reals
            shift = fpr_threshold(original["clean"][others]) - fpr_threshold(recompressed["clean"][others])
            moved = to_head & (bench.fold == f)
            logits[moved] = recompressed[variant][moved] + shift
        out[variant] = logits
    return out


def real_only_oof(model: RealOnly, bench: Bench) -> dict[str, np.ndarray]:
    n, variants = len(bench.paths), ("clean", "web-eval")
    if model.features == "clip":  # one row per image
        sets = {v: FeatureSet(clip_tokens(bench.paths, v, bench.cache).reshape(n, -1), np.arange(n)) for v in variants}
    else:
        sets = {v: features(bench.paths, v, FORENSIC, bench.cache) for v in variants}
    oof = {v: np.full(n, np.nan) for v in variants}
    for f in range(bench.k):
        reals = bench.is_train & (bench.fold != f) & (LABELS == 0)
        rows = sets["clean"].rows[reals[sets["clean"].index]]
        reduce = make_pipeline(StandardScaler(), PCA(model.components, random_state=0)).fit(rows)
        density = LedoitWolf().fit(reduce.transform(rows))
        for variant, fs in sets.items():
            surprise = np.log(density.mahalanobis(reduce.transform(fs.rows)))
            oof[variant][bench.fold == f] = fs.image_logits(surprise, n)[bench.fold == f]
    return oof


def zed_predictor(bench: Bench, fold: int, steps: int) -> ZedStyleDetector:
    """Fold `fold`'s zed-style detector, its predictor trained on the fold's training reals (cached)."""
    reals = np.flatnonzero(bench.is_train & (bench.fold != fold) & (LABELS == 0))
    key = hashlib.sha1(json.dumps([[bench.paths[i] for i in reals], steps, ZedStyleConfig().model_dump(mode="json")])
                       .encode()).hexdigest()[:12]
    file = bench.cache / f"zed-predictor-{key}.safetensors"
    detector = ZedStyleDetector()
    if file.exists():
        detector.predictor.load_state_dict(load_file(str(file)))
        return detector.eval()
    torch.manual_seed(fold)
    rng = np.random.default_rng(fold)
    images = [load_image(bench.paths[i]).rgb for i in reals]
    optimiser = torch.optim.Adam(detector.predictor.parameters(), lr=1e-3)
    detector.train()
    t0 = time.time()
    for step in range(steps):
        crops = []
        for i in rng.integers(len(images), size=16):
            img = images[i]
            y, x = rng.integers(img.shape[0] - 63), rng.integers(img.shape[1] - 63)
            crop = img[y : y + 64, x : x + 64]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        batch = torch.from_numpy(np.stack(crops).copy()).permute(0, 3, 1, 2).float() / 255
        loss = detector.stage_loss("predictor", batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"\r  zed fold {fold}: step {step + 1}/{steps}, {loss.item():.3f} bits/value, {time.time() - t0:.0f}s",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    bench.cache.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in detector.predictor.state_dict().items()}, str(file))
    return detector.eval()


def zed_features(bench: Bench, steps: int, sample: int) -> dict[str, np.ndarray]:
    """Per variant, (N, 9) features of every image the protocol needs (each by its fold's
    predictor; the head's training sample by the predictor of the fold it trains); NaN elsewhere."""
    n = len(bench.paths)
    key = hashlib.sha1(json.dumps([bench.paths, steps, sample, ZedStyleConfig().model_dump(mode="json")])
                       .encode()).hexdigest()[:12]
    file = bench.cache / f"zed-features-{key}.npz"
    if file.exists():
        return dict(np.load(file))
    out = {"clean": np.full((bench.k, n, 9), np.nan, np.float32), "web-eval": np.full((bench.k, n, 9), np.nan, np.float32)}
    t0 = time.time()
    for f in range(bench.k):
        detector = zed_predictor(bench, f, steps)
        needed = {"clean": np.flatnonzero((bench.fold == f) | zed_fit_sample(bench, f, sample)),
                  "web-eval": np.flatnonzero(bench.fold == f)}
        for variant, rows in needed.items():
            with torch.inference_mode():
                for j, i in enumerate(rows):
                    rgb = _variant_image(bench.paths[i], variant)
                    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
                    out[variant][f, i] = detector.features(x)[0].numpy()
                    if j % 100 == 0:
                        print(f"\r  zed features fold {f} {variant}: {j}/{len(rows)}, {time.time() - t0:.0f}s",
                              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    np.savez(file, **out)
    return out


def zed_fit_sample(bench: Bench, fold: int, size: int) -> np.ndarray:
    """Mask of a seeded sample of `size` training images of the other folds (both classes): the
    head is fitted on it, the real-only density on its reals."""
    rows = np.flatnonzero(bench.is_train & (bench.fold != fold))
    keep = np.random.default_rng(fold).choice(rows, min(size, len(rows)), replace=False)
    return np.isin(np.arange(len(bench.paths)), keep)


def zed_oof(candidate: Zed, bench: Bench) -> dict[str, np.ndarray]:
    n = len(bench.paths)
    feats = zed_features(bench, candidate.steps, candidate.head_images)
    oof = {v: np.full(n, np.nan) for v in ("clean", "web-eval")}
    for f in range(bench.k):
        fit = zed_fit_sample(bench, f, candidate.head_images)
        if candidate.real_only:
            fit &= LABELS == 0
        scaler = StandardScaler().fit(feats["clean"][f, fit])
        if candidate.real_only:
            density = LedoitWolf().fit(scaler.transform(feats["clean"][f, fit]))
            score = lambda rows: np.log(density.mahalanobis(scaler.transform(rows)))
        else:
            head = LogisticRegression(max_iter=1000).fit(scaler.transform(feats["clean"][f, fit]), LABELS[fit])
            score = lambda rows: head.decision_function(scaler.transform(rows))
        for variant in oof:
            oof[variant][bench.fold == f] = score(feats[variant][f, bench.fold == f])
    return oof


def fusion_oof(fusion: Fusion, bench: Bench) -> dict[str, np.ndarray]:
    for part, _ in fusion.parts:
        if part not in bench.results:
            bench.results[part] = run_protocol(part, bench)
    oofs = [(bench.results[part]["oof"], weight) for part, weight in fusion.parts]
    return {v: sum(weight * o[v] / o["clean"].std() for o, weight in oofs) for v in ("clean", "web-eval")}


def run_protocol(name: str, bench: Bench) -> dict:
    candidate = CANDIDATES[name]
    t0 = time.time()
    oof_of = {Recipe: recipe_oof, ClipProbe: clip_oof, RealOnly: real_only_oof, Zed: zed_oof,
              Fusion: fusion_oof, Routed: routed_oof}[type(candidate)]
    oof = oof_of(candidate, bench)
    lin, fold = bench.lin, bench.fold
    per_fold = []
    for f in range(bench.k):
        test = fold == f
        others_real = (fold != f) & (LABELS == 0)
        row = {"fold": f, "lineages": sorted(set(lin[test])), "threshold": fpr_threshold(oof["clean"][others_real])}
        row["clean"] = metrics(LABELS[test], oof["clean"][test], row["threshold"])
        row["web"] = metrics(LABELS[test], oof["web-eval"][test], row["threshold"])
        per_fold.append(row)
    mean = {v: {m: float(np.mean([r[v][m] for r in per_fold])) for m in per_fold[0][v] if not m.startswith("n_")}
            for v in ("clean", "web")}
    by_lineage = {}
    pooled_threshold = fpr_threshold(oof["clean"][LABELS == 0])
    mixed = {g for g in set(lin) if len(set(LABELS[lin == g])) == 2}  # e.g. biggan with its ForenSynths reals
    for g, label in sorted(set(zip(lin, LABELS))):
        m = (lin == g) & (LABELS == label)
        name = f"{g} ({'fake' if label else 'real'})" if g in mixed else g
        by_lineage[name] = {"label": "fake" if label else "real", "n": int(m.sum()),
                         "called_fake": float((oof["clean"][m] >= pooled_threshold).mean()),
                         "called_fake_web": float((oof["web-eval"][m] >= pooled_threshold).mean())}
    recipe = asdict(candidate) | ({"features": list(candidate.features)} if isinstance(candidate, Recipe) else {})
    return {"recipe": recipe, "folds": per_fold, "mean": mean, "by_lineage": by_lineage,
            "pooled_threshold_logit": pooled_threshold, "seconds": round(time.time() - t0, 1), "oof": oof}


# ------------------------------------------------------------------------------------------- ship
def fit_for_shipping(name: str, bench: Bench):
    """The candidate's detector fitted on every train-split image, and a record of the fit."""
    candidate = CANDIDATES[name]
    w = weights_for(bench.lin, LABELS, getattr(candidate, "balanced", False))
    train = bench.is_train
    if isinstance(candidate, ClipProbe):
        detector = ClipBlocksDetector(candidate.config())
        tokens = {v: clip_tokens(bench.paths, v, bench.cache, candidate.config()) for v in candidate.train_variants()}
        summary = detector.fit_tokens(*probe_tokens(candidate, bench, train, tokens))
        return detector, summary | {"balanced": candidate.balanced, "web_copies": candidate.web_copies,
                                    "jpeg_copies": candidate.jpeg_copies, "repost_copies": candidate.repost_copies}
    if not isinstance(candidate, Recipe):
        raise SystemExit(f"--ship: {name} is a {type(candidate).__name__}, which has no single detector to save")
    feats = {v: features(bench.paths, v, candidate.features, bench.cache)
             for v in ("clean",) + (("web-train",) if candidate.web_copies else ())}
    gbm = fit_recipe(candidate, [(fs, train) for fs in feats.values()], w)
    detector = TextureGBMDetector(TextureGBMConfig(
        features=list(candidate.features), max_iter=candidate.max_iter, learning_rate=candidate.learning_rate,
        max_leaf_nodes=candidate.max_leaf_nodes, l2_regularization=candidate.l2_regularization))
    detector.store_trees(gbm)
    return detector, {"web_copies": candidate.web_copies, "balanced": candidate.balanced}


def ship(name: str, result: dict, bench: Bench, out: Path, version: str, record: dict, align_to: Path | None = None):
    """Fit on every train-split image; calibrate and set the threshold from the pooled out-of-fold
    scores: Platt on the out-of-fold logits, threshold at 3% FPR on the out-of-fold reals, uncertain
    band where out-of-fold error exceeds 10%.

    align_to (a model JSON): the head is a second head of that model, so it takes that model's
    decision (threshold and band), and its Platt bias is moved so that its own 3%-FPR point falls
    on that threshold. Every image of the routed model is then judged by one decision, which is what
    sweeps, reports and users compare `p_fake` with."""
    t0 = time.time()
    detector, summary = fit_for_shipping(name, bench)
    seconds = round(time.time() - t0, 1)
    oof = result["oof"]["clean"]
    scale, bias = fit_platt(oof, LABELS)
    rules = {"threshold_rule": f"{TARGET_FPR:.0%} FPR on out-of-fold reals",
             "uncertain_band_rule": "narrowest band outside which out-of-fold error <= 10%"}
    if align_to is None:
        p = apply_platt(oof, scale, bias)
        threshold = float(apply_platt(np.array([result["pooled_threshold_logit"]]), scale, bias)[0])
        low, high = choose_uncertain_band(LABELS, p, threshold, max_error=0.10)
        decision = Decision(threshold=round(threshold, 4), uncertain_low=round(low, 4), uncertain_high=round(high, 4))
    else:
        decision = ModelInfo.model_validate_json(align_to.read_text()).decision
        move = float(logit(decision.threshold) - (scale * result["pooled_threshold_logit"] + bias))
        bias += move
        p = apply_platt(oof, scale, bias)
        threshold, low, high = decision.threshold, decision.uncertain_low, decision.uncertain_high
        rules = {"threshold_rule": f"{TARGET_FPR:.0%} FPR on out-of-fold reals, placed on {align_to.stem}'s threshold "
                                   f"by moving the Platt bias by {move:+.4f}",
                 "uncertain_band_rule": f"{align_to.stem}'s band"}
    info = ModelInfo(detector=detector.name, name=out.name, version=version,
                     calibration=Calibration(scale=scale, bias=bias, fitted_on="leave-lineage-out out-of-fold scores"),
                     decision=decision,
                     training={**record, **summary, "seconds": seconds, "train_images": int(bench.is_train.sum()), **rules,
                               "trained": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    CalibratedModel(detector, info).save(out)
    inside = (p >= low) & (p <= high)
    outside_error = ((p[~inside] >= threshold) != (LABELS[~inside] == 1)).mean()
    print(f"saved {out}.json / .safetensors (Platt scale {scale:.4f} bias {bias:.4f}, threshold {threshold:.4f}, "
          f"band [{low:.4f}, {high:.4f}]: {inside.mean():.1%} of out-of-fold images inside it, "
          f"{outside_error:.1%} error outside it)")


def route_to(model_json: Path, head: Path, version: str, command: str) -> None:
    """Make `model_json` send re-compressed images to the model saved at `head` (same folder), as
    version `version`."""
    if head.parent.resolve() != model_json.parent.resolve():
        raise SystemExit(f"--route-from: {model_json} and {head} must be in one folder")
    info = ModelInfo.model_validate_json(model_json.read_text())
    info.recompressed = RecompressedRoute(model=head.name, below_quality=Routed.below_quality)
    info.version = version
    info.training["route_command"] = command
    model_json.write_text(info.model_dump_json(indent=2) + "\n")
    print(f"{model_json} now routes images last saved as JPEG below quality {Routed.below_quality} to {head.name}")


# ----------------------------------------------------------------------------------------- report
def markdown(results: dict[str, dict], k: int, command: str) -> str:
    lines = [
        "# Leave-lineage-out generalisation (issue 10's model-selection rule)", "",
        f"Reproduce: `{command}` (see the docstring of `benchmarks/generalise.py` for the protocol).", "",
        f"{k} folds; each fold's generators and photo collections (whole lineages) are absent from its "
        "training. Threshold: 3% FPR on the other folds' out-of-fold reals. Means over folds.", "",
        "| candidate | AP | AUC | bal acc | fake recall | real FPR | web AP | web bal acc | web FPR | seconds | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        c, w = r["mean"]["clean"], r["mean"]["web"]
        lines.append(f"| {name} | {c['ap']:.3f} | {c['auc']:.3f} | {c['balanced_accuracy']:.3f} | {c['fake_recall']:.3f} "
                     f"| {c['real_fpr']:.3f} | {w['ap']:.3f} | {w['balanced_accuracy']:.3f} | {w['real_fpr']:.3f} "
                     f"| {r['seconds']} | {r['recipe']['notes']} |")
    for name, r in results.items():
        lines += ["", f"## {name}: per fold", "",
                  "| fold | held-out lineages | fakes | reals | AP | AUC | bal acc | fake recall | real FPR | web AP | web bal acc |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for f in r["folds"]:
            c, w = f["clean"], f["web"]
            lines.append(f"| {f['fold']} | {', '.join(f['lineages'])} | {c['n_fake']} | {c['n_real']} | {c['ap']:.3f} "
                         f"| {c['auc']:.3f} | {c['balanced_accuracy']:.3f} | {c['fake_recall']:.3f} | {c['real_fpr']:.3f} "
                         f"| {w['ap']:.3f} | {w['balanced_accuracy']:.3f} |")
        lines += ["", f"## {name}: share called fake per lineage (pooled 3%-FPR threshold, out-of-fold)", "",
                  "| lineage | label | n | called fake | called fake (web copy) |", "|---|---|---|---|---|"]
        for g, row in sorted(r["by_lineage"].items(), key=lambda kv: (kv[1]["label"], kv[0])):
            lines.append(f"| {g} | {row['label']} | {row['n']} | {row['called_fake']:.2f} | {row['called_fake_web']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    global LABELS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="synthbench manifest.csv")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated: {', '.join(CANDIDATES)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("runs/generalise-cache"))
    parser.add_argument("--out", type=Path, default=Path("docs/generalise"), help="writes OUT.md and OUT.json")
    parser.add_argument("--ship", type=Path, help="also fit the (single) candidate on all train images and save it here")
    parser.add_argument("--version", default="0.0.0")
    parser.add_argument("--route-from", type=Path,
                        help="with --ship of a recompressed candidate: this model JSON (in the same folder) then sends "
                             f"images last saved as JPEG below quality {Routed.below_quality} to the shipped head, "
                             "which takes its decision (see ship)")
    args = parser.parse_args()
    names = args.candidates.split(",")
    if args.ship and len(names) != 1:
        parser.error("--ship takes exactly one candidate")
    samples = read_manifest(args.data, track="256")
    LABELS = np.array([s.y for s in samples])
    folds = make_folds([lineage(s.generator) for s in samples], LABELS, args.folds)
    bench = Bench(samples, folds, args.folds, args.cache)
    command = shlex.join(["python", "benchmarks/generalise.py", *sys.argv[1:]])
    torch.set_num_threads(2)
    results = {}
    for name in names:
        results[name] = bench.results.get(name) or run_protocol(name, bench)
        bench.results[name] = results[name]
        c = results[name]["mean"]["clean"]
        print(f"{name}: AP {c['ap']:.3f} AUC {c['auc']:.3f} bal acc {c['balanced_accuracy']:.3f} "
              f"fake recall {c['fake_recall']:.3f} real FPR {c['real_fpr']:.3f} | web AP "
              f"{results[name]['mean']['web']['ap']:.3f} ({results[name]['seconds']}s)", flush=True)
        if args.ship:
            ship(name, results[name], bench, args.ship, args.version,
                 {"command": command, "data": args.data, "recipe": name}, align_to=args.route_from)
            if args.route_from:
                route_to(args.route_from, args.ship, args.version, command)
    if not args.ship:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.md").write_text(markdown(results, args.folds, command))
        public = {n: {k: v for k, v in r.items() if k != "oof"} for n, r in results.items()}
        Path(f"{args.out}.json").write_text(json.dumps({"command": command, "folds": args.folds, "results": public}, indent=1) + "\n")
        print(f"wrote {args.out}.md and {args.out}.json")


if __name__ == "__main__":
    main()
