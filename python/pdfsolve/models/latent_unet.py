"""A small U-Net that predicts the noise of a latent image (B, C, H, W) at a diffusion step, with cross-attention
from its feature maps to a sequence of condition tokens (B, L, D) (the PDF's, for CbLDM)."""
from __future__ import annotations

import math

import torch
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, 8), channels)


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, dim) sinusoidal features of integer steps t (B,) (Vaswani et al. 2017 positions, periods up to 10^4)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angle = t.float()[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], -1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with group norms and SiLU, the step embedding added in between, and a residual path."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.first = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.time = nn.Linear(t_dim, c_out)
        self.second = nn.Sequential(_norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.first(x) + self.time(t_emb)[:, :, None, None]
        return self.skip(x) + self.second(h)


class CrossAttention(nn.Module):
    """Every pixel of a feature map (B, C, H, W) attends to the condition tokens (B, L, D); residual."""

    def __init__(self, channels: int, cond_dim: int, heads: int = 4):
        super().__init__()
        self.norm = _norm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, kdim=cond_dim, vdim=cond_dim, batch_first=True)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(query, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class LatentUNet(nn.Module):
    """eps(x_t, t, tokens): one down- and one up-sampling level (H and W must be even), a residual block and a
    cross-attention at each resolution, a skip connection across."""

    def __init__(self, channels: int, width: int, cond_dim: int):
        super().__init__()
        t_dim = 4 * width
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.down_block, self.down_attention = ResBlock(width, width, t_dim), CrossAttention(width, cond_dim)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.mid_block, self.mid_attention = ResBlock(2 * width, 2 * width, t_dim), CrossAttention(2 * width, cond_dim)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.up_block, self.up_attention = ResBlock(2 * width, width, t_dim), CrossAttention(width, cond_dim)
        self.out = nn.Sequential(_norm(width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        t_emb = self.time(timestep_features(t, self.width).to(x.dtype))
        skip = self.down_attention(self.down_block(self.inp(x), t_emb), tokens)
        h = self.mid_attention(self.mid_block(self.down(skip), t_emb), tokens)
        h = self.up_attention(self.up_block(torch.cat([self.up(h), skip], 1), t_emb), tokens)
        return self.out(h)
