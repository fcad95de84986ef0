"""Held-out AUC of a branch on the crop cache's held-out groups, degraded as in training and not.

`python -m core.train.validate --cache ../cache --weights weights` measures the shipped branches
(the `held_out_auc` of `detector.json` is the degraded figure of the training run).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from core.metrics import roc_auc
from core.model import BranchConfig, load_detector, to_tensor
from core.train.data import Pool, blend_batch, load_pools, synthetic_batch

__all__ = ["held_out_auc"]

VAL_SEED = 1234  # fixed, so runs and shipped weights are compared on the same samples


def held_out_auc(net: torch.nn.Module, pools: dict[str, Pool], branch: str, cfg: BranchConfig, batches: int = 20,
                 batch: int = 32, degraded: bool = True) -> float:
    """AUC on `batches` fixed batches; blend: self-blends only (no swaps, glasses or tight framing)."""
    was_training = net.training
    net.eval()
    rng = np.random.default_rng(VAL_SEED)
    scores, labels = [], []
    with torch.inference_mode():
        for _ in range(batches):
            if branch == "blend":
                images, y = blend_batch(pools, batch // 2, cfg.input_size, rng, degraded=degraded)
            else:
                images, y = synthetic_batch(pools, batch, cfg.input_size, rng, degraded=degraded)
            scores.append(net(to_tensor(images, cfg)).numpy())
            labels.append(y)
    net.train(was_training)
    return roc_auc(np.concatenate(labels), np.concatenate(scores))


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
    print("| branch | held-out AUC, degraded | undegraded |\n|---|---|---|")
    for name, net in detector.branches.items():
        cfg = detector.configs[name]
        aucs = [held_out_auc(net, val_pools, name, cfg, args.batches, degraded=d) for d in (True, False)]
        print(f"| {name} | {aucs[0]:.3f} | {aucs[1]:.3f} |")


if __name__ == "__main__":
    main()
