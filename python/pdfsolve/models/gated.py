"""Gated 1-D convolutions (van den Oord et al. 2016), the PDF layers of the distance route's CVAE."""
from __future__ import annotations

from torch import nn


class GatedConv1d(nn.Module):
    """out = a * sigmoid(b), where (a, b) are the two halves of a convolution's 2 ``c_out`` channels.

    ``transposed`` uses a transposed convolution (kernel 4, stride 2, padding 1: the length doubles); otherwise a
    convolution of width ``kernel`` with 'same' padding for odd kernels (0 padding when ``same`` is False).
    Input (B, c_in, L) -> (B, c_out, L'), L' = 2 L (transposed), L (same) or L - kernel + 1.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 5, *, transposed: bool = False, same: bool = True):
        super().__init__()
        if transposed:
            self.conv = nn.ConvTranspose1d(c_in, 2 * c_out, 4, stride=2, padding=1)
        else:
            self.conv = nn.Conv1d(c_in, 2 * c_out, kernel, padding=kernel // 2 if same else 0)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, 1)
        return a * b.sigmoid()
