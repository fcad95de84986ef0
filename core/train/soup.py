"""`python -m core.train.soup --run RUN --run RUN ... --cache CACHE --out runs/NAME`: one network whose
weights are the plain average of runs of one branch fine-tuned from the same start with other seeds or
options (a uniform "model soup", Wortsman et al., ICML 2022), so it costs what one run costs to score.

It writes `final.pt` and `summary.json` as a training run does, so `core.train.export --run
blend=runs/NAME` ships it; the summary lists the ingredients' summaries and the soup's own held-out
figures, measured on the held-out split of `--seed` (ingredients trained with another seed have seen
some of those faces, so read them as an upper bound).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from core.model import BranchConfig, create_branch
from core.train.data import load_pools
from core.train.validate import held_out_figures

__all__ = ["average"]

SAME = ("branch", "backbone", "input_size", "init")  # what every ingredient must share


def average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Floating tensors averaged in float32; counters (BatchNorm's batches seen) taken from the first."""
    return {key: torch.stack([s[key].float() for s in states]).mean(0) if value.is_floating_point() else value
            for key, value in states[0].items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", required=True, help="a finished run folder (final.pt, summary.json); two or more")
    parser.add_argument("--cache", type=Path, required=True, help="crop cache from core.train.cache, for the held-out figures")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="held-out split seed")
    parser.add_argument("--val-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    summaries = [json.loads((run / "summary.json").read_text()) for run in args.run]
    if len(summaries) < 2:
        parser.error("give two or more --run")
    differ = [key for key in SAME if len({str(s.get(key)) for s in summaries}) > 1]
    if differ:
        parser.error(f"the runs differ in {', '.join(differ)}: a soup averages runs of one branch from one start")
    torch.set_num_threads(args.threads)
    first = summaries[0]
    net = create_branch(first["backbone"], pretrained=False)
    net.load_state_dict(average([torch.load(run / "final.pt", map_location="cpu", weights_only=True) for run in args.run]))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out / "final.pt")
    _, val_pools = load_pools(args.cache, seed=args.seed)
    cfg = BranchConfig("val", first["backbone"], "", first["input_size"])
    summary = {**{key: first[key] for key in SAME}, "soup": [str(run) for run in args.run], "seed": args.seed,
               **held_out_figures(net, val_pools, first["branch"], cfg, args.val_batches), "ingredients": summaries}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "ingredients"}))


if __name__ == "__main__":
    main()
