"""The quick float classifier recipe (train_classifier.py's folder mode): fit / predict on
uint8 image arrays. No checkpoints, no resume, no quantisation-aware training: the app
recipes train through the shared loop in `patchcam.training.loop`.

Images stay uint8 NHWC in memory; each batch is augmented on the fly (flip, shifted crop,
brightness / contrast) and scaled to p / 255, the float view of the int8 input (see zoo).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flip, random shift of up to 1/8 (reflect padded), brightness / contrast."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    ph, pw = h // 8, w // 8
    xp = F.pad(x, (pw, pw, ph, ph), mode="reflect")
    dy = torch.randint(0, 2 * ph + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pw + 1, (n,), generator=gen)
    x = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    b = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
    c = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean + b).clamp(0, 1)


def fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: int, lr: float,
        batch: int = 64, seed: int = 0, desc: str = "train",
        on_epoch: Callable[[int, float], None] | None = None) -> nn.Module:
    """Train with AdamW + cosine schedule and label smoothing; shows a progress bar."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * (len(images) // batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.15)
    y_all = torch.from_numpy(labels).long()
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=gen).numpy()
        bar = tqdm(range(len(images) // batch), desc=f"{desc} {epoch + 1}/{epochs}", unit="b",
                   leave=False)
        total = 0.0
        for i in bar:
            idx = order[i * batch:(i + 1) * batch]
            x = augment(to_batch(images[idx]), gen)
            loss = F.cross_entropy(model(x), y_all[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step < steps:
                sched.step()
            step += 1
            total += loss.item()
            bar.set_postfix(loss=f"{total / (i + 1):.3f}")
        if on_epoch:
            on_epoch(epoch, total / max(1, len(images) // batch))
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    return torch.cat([model(to_batch(images[i:i + batch]))
                      for i in range(0, len(images), batch)]).numpy()
