"""Train a tiny DCGAN-style generator on CPU and write generated example images.

    python examples/make_generated.py --out examples/generated

What it does (deterministic for a given torch version and thread count):

* **Data** -- random square crops of the redistributable colour photographs that
  ship with scikit-image (public domain / CC0, see ``examples/README.md``):
  ``astronaut``, ``coffee``, ``chelsea``, ``rocket``, ``hubble_deep_field`` and
  ``retina``.  The crop side is drawn uniformly from ``[res, 256]`` px (``res`` =
  current training resolution) and the crop is *down*-scaled (antialiased) to
  ``res``, so real pixels are never up-sampled.  Random horizontal flips.
* **Generator** -- latent (128) -> 4x4 -> transposed-conv (k4, s2) stack up to
  64x64, then two nearest-neighbour-upsample + 3x3-conv blocks up to 256x256
  RGB (tanh).  Both kinds of up-sampling leave their usual spectral traces.
* **Discriminator** -- strided convolutions with spectral norm, hinge loss.
* **Schedule** (progressive, ProGAN-style but minimal) -- stage 1 trains the
  64x64 part (generator body + 1x1 to-RGB, discriminator body); stage 2 adds the
  64->128->256 generator head and a 256->64 discriminator tail and trains the
  whole network end to end at 256x256, fading the new layers in linearly over
  the first half of the stage.  After the fade the 64x64 shortcut has weight 0,
  so every output pixel comes from the trained 256x256 head.
* **Output** -- the first ``--count`` samples of a fixed-seed latent batch (no
  cherry-picking), saved as baseline JPEG quality 95 with 4:2:0 chroma, i.e. the
  same encoding ``make_real.py`` uses for the real photographs.

Default step counts take about 6-8 minutes on one CPU thread (401 s and 465 s
measured on a 2-core machine shared with another job; torch 2.13 CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from skimage import data

TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
JPEG_KWARGS = {"format": "JPEG", "quality": 95, "subsampling": 2, "optimize": False}
LATENT = 128
FULL = 256


# --------------------------------------------------------------------------- data
def load_photos() -> list[torch.Tensor]:
    """The training photographs as uint8 tensors (3, H, W)."""
    photos = []
    for name in TRAIN_IMAGES:
        arr = getattr(data, name)()
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, (name, arr.shape)
        photos.append(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous())
    return photos


def sample_batch(photos: list[torch.Tensor], n: int, res: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` random crops (side in [res, 256]) scaled down to ``res``; values in [-1, 1]."""
    out = torch.empty(n, 3, res, res)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        _, h, w = img.shape
        side = int(rng.integers(res, min(FULL, h, w) + 1))
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = img[:, y : y + side, x : x + side].float().unsqueeze(0) / 127.5 - 1.0
        if side != res:
            crop = F.interpolate(crop, size=(res, res), mode="bilinear", align_corners=False, antialias=True)
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        out[i] = crop[0]
    return out


# ------------------------------------------------------------------------ models
def up_tconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def up_nearest(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(  # z -> 64x64 features
            nn.ConvTranspose2d(LATENT, 256, 4, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),  # 4
            up_tconv(256, 128),  # 8
            up_tconv(128, 64),  # 16
            up_tconv(64, 32),  # 32
            up_tconv(32, 32),  # 64
        )
        self.to_rgb64 = nn.Conv2d(32, 3, 1)
        self.head = nn.Sequential(up_nearest(32, 16), up_nearest(16, 8))  # 64 -> 128 -> 256
        self.to_rgb256 = nn.Conv2d(8, 3, 3, 1, 1)

    def forward(self, z: torch.Tensor, res: int = FULL, alpha: float = 1.0) -> torch.Tensor:
        h = self.body(z.view(-1, LATENT, 1, 1))
        if res == 64:
            return torch.tanh(self.to_rgb64(h))
        hi = self.to_rgb256(self.head(h))
        if alpha >= 1.0:
            return torch.tanh(hi)
        lo = F.interpolate(self.to_rgb64(h), scale_factor=4, mode="nearest")
        return torch.tanh((1.0 - alpha) * lo + alpha * hi)


def sn_conv(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1) -> nn.Module:
    return nn.utils.spectral_norm(nn.Conv2d(cin, cout, k, s, p))


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        self.from_rgb64 = nn.Sequential(sn_conv(3, 32, 1, 1, 0), act())
        self.tail = nn.Sequential(  # 256 -> 64, 32 channels (matches from_rgb64)
            sn_conv(3, 8, 3, 1, 1), act(), sn_conv(8, 16), act(), sn_conv(16, 32), act()
        )
        self.body = nn.Sequential(  # 64 -> score
            sn_conv(32, 32), act(),  # 32
            sn_conv(32, 64), act(),  # 16
            sn_conv(64, 128), act(),  # 8
            sn_conv(128, 128), act(),  # 4
            sn_conv(128, 1, 4, 1, 0),
        )

    def forward(self, x: torch.Tensor, res: int = FULL, alpha: float = 1.0) -> torch.Tensor:
        if res == 64:
            h = self.from_rgb64(x)
        elif alpha >= 1.0:
            h = self.tail(x)
        else:
            h = (1.0 - alpha) * self.from_rgb64(F.avg_pool2d(x, 4)) + alpha * self.tail(x)
        return self.body(h).flatten()


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------- training
def train_step(g, d, opt_g, opt_d, real, res, alpha, gen) -> tuple[float, float]:
    """One hinge-loss GAN step (D then G)."""
    z = torch.randn(real.shape[0], LATENT, generator=gen)
    fake = g(z, res, alpha)
    loss_d = F.relu(1.0 - d(real, res, alpha)).mean() + F.relu(1.0 + d(fake.detach(), res, alpha)).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = -d(fake, res, alpha).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("examples/generated"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps64", type=int, default=800, help="stage-1 steps at 64x64")
    p.add_argument("--steps256", type=int, default=100, help="stage-2 steps at 256x256 (fade-in over first half)")
    p.add_argument("--batch64", type=int, default=16)
    p.add_argument("--batch256", type=int, default=8)
    p.add_argument("--count", type=int, default=4, help="number of images to write")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (results depend on this)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    photos = load_photos()
    g, d = Generator(), Discriminator()
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    t0 = time.perf_counter()
    schedule = [(64, args.steps64, args.batch64), (FULL, args.steps256, args.batch256)]
    for res, steps, batch in schedule:
        fade = max(1, steps // 2) if res == FULL else 1
        for step in range(steps):
            alpha = min(1.0, (step + 1) / fade)
            real = sample_batch(photos, batch, res, rng)
            ld, lg = train_step(g, d, opt_g, opt_d, real, res, alpha, gen)
            if step % 100 == 0 or step == steps - 1:
                print(f"[{time.perf_counter() - t0:6.0f}s] res {res:3d} step {step:4d}/{steps} "
                      f"alpha {alpha:.2f}  loss_d {ld:.3f}  loss_g {lg:.3f}", flush=True)

    # Sample: fixed latent batch, generator in eval mode (BatchNorm running statistics).
    g.eval()
    z = torch.randn(max(args.count, 1), LATENT, generator=torch.Generator().manual_seed(args.seed + 1))
    with torch.no_grad():
        imgs = g(z, FULL, 1.0)
    imgs = ((imgs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        path = args.out / f"dcgan_seed{args.seed}_{i:02d}.jpg"
        Image.fromarray(np.ascontiguousarray(imgs[i]), "RGB").save(path, **JPEG_KWARGS)
        print(f"wrote {path}")
    print(f"total time {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
