"""Colour constants shared by detectors and explanations (numpy only, imported by both)."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 (JPEG's) RGB -> YCbCr, one row each for Y (luma), Cb and Cr; without the 128
# offset (only differences matter to synthscan).
BT601_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
