"""Held-out AUC of a branch on the crop cache's held-out groups, degraded as in training and not;
for the blend branch also how often a twin outscores its own real face (so whether the pooled AUC
loses to missed blends or to the spread of real faces' scores) and whether skin smoothing or H.264
re-encoding alone reads as a manipulation, and the AUC by how much of the crop a blend covers
(small part-wise blends are the hard ones); for both, the undegraded AUC with every image rendered
grey (how much a branch leans on colour) and how far held-out real video faces score above real photos.

`python -m core.train.validate --cache ../cache --weights weights` measures the shipped branches
(the `held_out_auc` of `detector.json` is the degraded figure of the training run).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.metrics import roc_auc
from core.model import BranchConfig, grey_rgb, load_detector, to_tensor
from core.train.augment import h264, photo_look, skin_smoothing, tilted
from core.train.data import Pool, blend_batch, draw_reals, finish_crop, load_pools, synthetic_batch

__all__ = ["HeldOut", "held_out_auc", "held_out_scores", "held_out_figures", "cue_auc", "CUES", "auc_by_blend_size", "video_above_photos"]

VAL_SEED = 1234  # fixed, so runs and shipped weights are compared on the same samples


def held_out_auc(net: torch.nn.Module, pools: dict[str, Pool], branch: str, cfg: BranchConfig, batches: int = 20,
                 batch: int = 32, degraded: bool = True) -> float:
    """AUC on `batches` fixed batches; blend: self-blends only (no swaps, glasses or tight framing)."""
    held = held_out_scores(net, pools, branch, cfg, batches, batch, degraded)
    return roc_auc(held.labels, held.logits)


@dataclass
class HeldOut:
    labels: np.ndarray
    logits: np.ndarray
    areas: np.ndarray  # share of the crop each image's blend covers: 0 for reals and the synthetic branch


def held_out_scores(net: torch.nn.Module, pools: dict[str, Pool], branch: str, cfg: BranchConfig, batches: int = 20,
                    batch: int = 32, degraded: bool = True, grey: bool = False) -> HeldOut:
    """Scores of the fixed held-out batches; blend: real, twin, real, twin, ..."""
    rng = np.random.default_rng(VAL_SEED)
    images, labels, areas = [], [], []
    for _ in range(batches):
        if branch == "blend":
            drawn, y, masks = blend_batch(pools, batch // 2, cfg.input_size, rng, degraded=degraded)
            areas.append(masks.reshape(len(masks), -1).mean(axis=1))
        else:
            drawn, y = synthetic_batch(pools, batch, cfg.input_size, rng, degraded=degraded)
            areas.append(np.zeros(len(y)))
        images += [grey_rgb(img) for img in drawn] if grey else drawn
        labels.append(y)
    return HeldOut(np.concatenate(labels), _scores(net, images, cfg, batch), np.concatenate(areas))


def held_out_figures(net: torch.nn.Module, pools: dict[str, Pool], branch: str, cfg: BranchConfig, batches: int = 20,
                     batch: int = 32) -> dict[str, float | None]:
    """What a run's summary records: held-out AUC degraded and undegraded, and for the blend branch
    each of CUES as a cue (None for the synthetic branch)."""
    aucs = [held_out_auc(net, pools, branch, cfg, batches, batch, degraded) for degraded in (True, False)]
    cues = {f"{cue}_auc": cue_auc(net, pools, cfg, change, batches, batch) if branch == "blend" else None for cue, change in CUES.items()}
    return {"held_out_auc": aucs[0], "held_out_auc_undegraded": aucs[1], **cues}


def auc_by_blend_size(held: HeldOut, parts: int = 3) -> list[tuple[float, float, float]]:
    """(smallest and largest blend share, AUC of every real against those twins) for each of `parts`
    equal-count ranges of the twins' blend size."""
    real, twins = held.logits[held.labels == 0], held.labels == 1
    edges = np.quantile(held.areas[twins], np.linspace(0.0, 1.0, parts + 1))
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = held.logits[twins & (held.areas >= low) & (held.areas <= high)]
        rows.append((float(low), float(high), roc_auc(np.r_[np.zeros(len(real)), np.ones(len(chosen))], np.r_[real, chosen])))
    return rows


# What must not read as a manipulation, each a change of a whole real face: a phone's beauty filter,
# re-encoding as video at a CRF that platforms use, at full size and at half size, enlarged again as a crop
# of a re-shared clip is, a photo's edited look (colour, tone curve, vignette) and a tilted head.
CUES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "smoothing": skin_smoothing,
    "codec": lambda img, seed: h264(img, 35),
    "reshare": lambda img, seed: h264(img, 35, scale=0.5),
    "look": photo_look,
    "tilt": tilted,
}


def cue_auc(net: torch.nn.Module, pools: dict[str, Pool], cfg: BranchConfig, change: Callable[[np.ndarray, int], np.ndarray],
            batches: int = 20, batch: int = 32) -> float:
    """AUC of held-out real faces changed by `change(img, seed)` (one of CUES) against the same faces
    as they are: 0.5 means the change is no cue, 1.0 that every changed face scores above its original."""
    rng = np.random.default_rng(VAL_SEED)
    images = []
    for pool, i in draw_reals(pools, batches * batch // 2, rng):
        seed = int(rng.integers(1 << 31))
        images += [finish_crop(img, cfg.input_size, seed, degraded=False) for img in (pool.crops[i], change(pool.crops[i], seed))]
    labels = np.tile([0.0, 1.0], len(images) // 2)
    return roc_auc(labels, _scores(net, images, cfg, batch))


PHOTO_SOURCES = ("gan_real", "utkface", "nomask")


def video_above_photos(net: torch.nn.Module, pools: dict[str, Pool], cfg: BranchConfig, per_source: int = 300, batch: int = 32) -> float | None:
    """Share of held-out real video frames (whole clips are held out) scoring above 95 % of held-out real
    photos, undegraded: about 0.05 when video faces score like photos. Every synthetic branch trained
    runs high on the real dev clips (docs/training-log.md); this measures the same on held-out clips."""
    if "video" not in pools or not any(n in pools for n in PHOTO_SOURCES):
        return None

    def scores(pool: Pool) -> np.ndarray:
        crops = [finish_crop(c, cfg.input_size, k, degraded=False) for k, c in enumerate(pool.crops[:per_source])]
        return _scores(net, crops, cfg, batch)

    photos = np.concatenate([scores(pools[n]) for n in PHOTO_SOURCES if n in pools])
    return float(np.mean(scores(pools["video"]) > np.percentile(photos, 95)))


def _scores(net: torch.nn.Module, images: list[np.ndarray], cfg: BranchConfig, batch: int) -> np.ndarray:
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        scores = [net(to_tensor(images[k : k + batch], cfg)).numpy() for k in range(0, len(images), batch)]
    net.train(was_training)
    return np.concatenate(scores)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="crop cache from core.train.cache")
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="held-out split seed (as in training)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    detector = load_detector(args.weights)
    _, val_pools = load_pools(args.cache, seed=args.seed)
    print("| branch | held-out AUC, degraded | undegraded | undegraded, all grey | twin above its own real, undegraded "
          "| skin smoothing as a cue (AUC, 0.5 = none) | H.264 at CRF 35 as a cue | the same at half size as a cue | an edited look as a cue | a tilt of 8 to 18 degrees as a cue "
          "| real video frames above 95 % of real photos (0.05 = alike) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    blend_sizes = []
    for name, net in detector.branches.items():
        cfg = detector.configs[name]
        degraded, clean, grey = (held_out_scores(net, val_pools, name, cfg, args.batches, degraded=d, grey=g) for d, g in ((True, False), (False, False), (False, True)))
        paired, cues = "n/a", ["n/a"] * len(CUES)
        if name == "blend":
            paired = f"{np.mean(clean.logits[1::2] > clean.logits[0::2]):.3f}"
            cues = [f"{cue_auc(net, val_pools, cfg, change, args.batches):.3f}" for change in CUES.values()]
            blend_sizes = list(zip(auc_by_blend_size(degraded), auc_by_blend_size(clean)))
        aucs = (roc_auc(held.labels, held.logits) for held in (degraded, clean, grey))
        video = video_above_photos(net, val_pools, cfg)
        print(f"| {name} |", " | ".join([*(f"{auc:.3f}" for auc in aucs), paired, *cues, "n/a" if video is None else f"{video:.2f}"]), "|")
    if blend_sizes:
        _print_blend_sizes(blend_sizes)


def _print_blend_sizes(rows: list) -> None:
    """Every real against the twins of each blend-size third; the same twins in both columns."""
    print("\n| share of the crop the blend covers | blend held-out AUC, degraded | undegraded |\n|---|---|---|")
    for (low, high, auc), (_, _, clean_auc) in rows:
        print(f"| {low:.3f} to {high:.3f} | {auc:.3f} | {clean_auc:.3f} |")


if __name__ == "__main__":
    main()
