"""Write the shipped detector into `weights/`: float16 branch files and `detector.json`.

`python -m core.train.export --run blend=runs/blend --run synthetic=runs/synthetic --out weights`
ships trained runs; `--keep synthetic` re-ships that branch of `--out` unchanged (retrain one branch
only); `--untrained` ships ImageNet backbones with fresh heads (flagged untrained).
Calibration and thresholds are fitted afterwards by `python -m core.calibrate`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import torch

from core import code_commit
from core.faces import CROP_MARGIN
from core.model import IMAGENET_MEAN, IMAGENET_STD, METADATA_FILE, create_branch, save_branch

BRANCHES = ("blend", "synthetic")
DEFAULT_THRESHOLDS = {"real": 0.35, "fake": 0.65}
TRAINING_DATA = {
    "blend": "real faces only (UTKFace subset, unmasked-face photos, frames of 38 real talking-head clips, Unsplash "
             "portraits) and pseudo-fakes made from them on the fly: self-blends and, for a share, blends of another face of "
             "the same source aligned on the landmarks (whole-face and part-wise masks)",
    "synthetic": "StyleGAN2 faces (thispersondoesnotexist) against Unsplash portraits, plus reals of every source and "
                 "reals with simulated generator up-sampling traces",
    "licenses": "UTKFace: non-commercial research only; real videos: research use; see weights/MODEL_CARD.md",
}


def _branch_entry(backbone: str, size: int, trained: bool, name: str, grey: bool = False) -> dict:
    return {"backbone": backbone, "file": f"{name}.pt", "input_size": size, "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD), "crop_margin": CROP_MARGIN, "trained": trained, "grey": grey}


def _kept(out: Path, name: str) -> tuple[dict, dict | None]:
    """The shipped branch `name` in `out`, unchanged: its file stays, its entry loses the old
    calibration (refitted for the new pair), its training record (None if untrained) stays."""
    shipped = json.loads((out / METADATA_FILE).read_text())
    entry = {k: v for k, v in shipped["branches"][name].items() if not k.startswith("calib_")}
    return entry, shipped["training"].get(name)


def _earlier_stages(summary: dict) -> list[dict]:
    """Summaries of the runs this one continued from (`init`), oldest first, while their folders exist."""
    stages, init = [], summary.get("init")
    while init and init != "imagenet" and len(stages) < 50:  # the bound only guards a hand-edited loop
        previous = Path(init).parent / "summary.json"
        if not previous.is_file():
            break
        stages.insert(0, json.loads(previous.read_text()))
        init = stages[0].get("init")
    return stages


def export(runs: dict[str, Path], out: Path, backbone: str, size: int, keep: tuple[str, ...] = ()) -> dict:
    """Ship trained runs (each with the backbone and input size of its summary), keep already shipped
    branches as they are (`keep`), and fill any other branch with an untrained ImageNet backbone."""
    out.mkdir(parents=True, exist_ok=True)
    branches, training = {}, {}
    for name in BRANCHES:
        if name in keep:
            branches[name], record = _kept(out, name)
            if record:
                training[name] = record
            continue
        trained = name in runs
        summary = json.loads((runs[name] / "summary.json").read_text()) if trained else {}
        arch, input_size = summary.get("backbone", backbone), summary.get("input_size", size)
        net = create_branch(arch, pretrained=not trained)
        if trained:
            net.load_state_dict(torch.load(runs[name] / "final.pt", map_location="cpu", weights_only=True))
            earlier = _earlier_stages(summary)
            training[name] = {**summary, "earlier_stages": earlier} if earlier else summary
        save_branch(net, out / f"{name}.pt")
        branches[name] = _branch_entry(arch, input_size, trained, name, bool(summary.get("grey")))
    now = dt.datetime.now(dt.timezone.utc)
    complete = len(training) == len(BRANCHES)
    metadata = {
        "version": f"{now:%Y.%m.%d}-{code_commit()}" + ("" if complete else "-untrained"),
        "created": now.isoformat(timespec="seconds"),
        "code_commit": code_commit(),
        "fusion": "max of calibrated branch probabilities",
        "thresholds": DEFAULT_THRESHOLDS,
        "branches": branches,
        "training": training,
        "training_data": TRAINING_DATA if training else {},
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="BRANCH=DIR", help="trained run folder per branch")
    parser.add_argument("--keep", action="append", default=[], choices=BRANCHES, help="re-ship this branch of --out unchanged")
    parser.add_argument("--untrained", action="store_true", help="ship ImageNet backbones with fresh heads")
    parser.add_argument("--out", type=Path, default=Path("weights"))
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=160, help="input size of untrained branches")
    args = parser.parse_args()
    runs = {name: Path(folder) for name, folder in (item.split("=", 1) for item in args.run)}
    if not args.untrained and set(runs) | set(args.keep) != set(BRANCHES):
        parser.error(f"give --run or --keep for each of {BRANCHES}, or --untrained")
    torch.manual_seed(0)
    print(json.dumps(export(runs, args.out, args.backbone, args.size, tuple(args.keep)), indent=2))


if __name__ == "__main__":
    main()
