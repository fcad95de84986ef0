"""Fit per-branch calibration and the decision thresholds on the dev split, and store them beside the weights.

`python -m core.calibrate runs/eval-dev-raw/items.csv --weights weights/` reads the per-item CSV of
`python -m core.evaluate` run with *uncalibrated* weights (every branch at a=1, b=0) and writes
Platt parameters per branch and the REAL / FAKE thresholds into `weights/detector.json`.

Each branch is calibrated on its own family only: `blend` on the face-manipulation fakes against
all reals, `synthetic` on the fully synthetic fakes against all reals, because each branch is
expected to be silent on the other family. The FAKE threshold is the lowest fused score that keeps
the false-positive rate on dev reals at or below `--max-fpr`, kept within [0.5, 0.99] (so on a small
or odd dev set the rate may differ from the one asked for); the REAL threshold is the highest score
that still keeps at most `--max-fnr` of dev fakes below it, at least 0.01 and never above FAKE.
Evaluating on the same dev split afterwards gives optimistic calibration figures: say so.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from core.model import METADATA_FILE

__all__ = ["fit_platt", "choose_thresholds", "FAMILIES"]

FAMILIES = {"blend": ("photoshop_splice", "splice", "faceswap", "blend"), "synthetic": ("stylegan2", "gan", "diffusion", "synthetic")}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _log_loss(a: float, b: float, x: np.ndarray, y: np.ndarray) -> float:
    z = a * x + b
    return float(np.mean(np.logaddexp(0, z) - y * z))


def fit_platt(probs: np.ndarray, labels: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * logit(p) + b): Newton steps, halved until the
    loss goes down, so overlapping classes cannot make it diverge."""
    x, y = _logit(np.asarray(probs, float)), np.asarray(labels, float)
    a, b = 1.0, 0.0
    loss = _log_loss(a, b, x, y)
    for _ in range(steps):
        p = 0.5 * (1 + np.tanh(0.5 * (a * x + b)))
        g = np.array([np.mean((p - y) * x), np.mean(p - y)])
        w = p * (1 - p) + 1e-9
        h = np.array([[np.mean(w * x * x), np.mean(w * x)], [np.mean(w * x), np.mean(w)]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(h, g)
        scale = 1.0
        while scale > 1e-6 and _log_loss(a - scale * step[0], b - scale * step[1], x, y) > loss:
            scale /= 2
        if scale <= 1e-6:
            break
        a, b = a - scale * step[0], b - scale * step[1]
        new_loss = _log_loss(a, b, x, y)
        if loss - new_loss < 1e-10:
            break
        loss = new_loss
    return float(a), float(b)


def apply_platt(probs: np.ndarray, a: float, b: float) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * (a * _logit(np.asarray(probs, float)) + b)))


def choose_thresholds(real_scores: np.ndarray, fake_scores: np.ndarray, max_fpr: float, max_fnr: float) -> dict[str, float]:
    """FAKE threshold: smallest score with FPR <= max_fpr on reals, kept within [0.5, 0.99].
    REAL threshold: largest score with at most max_fnr of fakes at or below it, within [0.01, FAKE]."""
    reals = np.sort(np.asarray(real_scores, float))
    allowed = int(np.floor(max_fpr * reals.size))
    fake_t = reals[reals.size - allowed - 1] + 1e-4 if reals.size else 0.5
    fake_t = float(min(max(fake_t, 0.5), 0.99))
    fakes = np.sort(np.asarray(fake_scores, float))
    missed = int(np.floor(max_fnr * fakes.size))
    real_t = float(fakes[missed] - 1e-4) if fakes.size else 0.5
    real_t = float(np.clip(real_t, 0.01, fake_t))
    return {"real": round(real_t, 4), "fake": round(fake_t, 4)}


def _family(method: str) -> str | None:
    for name, keys in FAMILIES.items():
        if any(k in method.lower() for k in keys):
            return name
    return None


def calibrate(rows: list[dict], max_fpr: float, max_fnr: float) -> dict:
    """Platt parameters per branch and thresholds on the fused calibrated score."""
    rows = [r for r in rows if r.get("blend") not in (None, "") and not r.get("error")]
    label = np.array([r["label"] == "fake" for r in rows], float)
    family = np.array([_family(r.get("method", "")) if r["label"] == "fake" else "real" for r in rows])
    calibrated, params = {}, {}
    for branch in FAMILIES:
        raw = np.array([float(r[branch]) for r in rows])
        use = (family == "real") | (family == branch)
        params[branch] = fit_platt(raw[use], label[use])
        calibrated[branch] = apply_platt(raw, *params[branch])
    fused = np.maximum(calibrated["blend"], calibrated["synthetic"])
    thresholds = choose_thresholds(fused[label == 0], fused[label == 1], max_fpr, max_fnr)
    return {"platt": params, "thresholds": thresholds, "items": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", type=Path, help="items.csv of an evaluation run with uncalibrated weights")
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--max-fpr", type=float, default=0.05, help="false-positive rate allowed on dev reals")
    parser.add_argument("--max-fnr", type=float, default=0.10, help="share of dev fakes allowed below REAL")
    args = parser.parse_args()
    with args.items.open(newline="") as fh:
        fit = calibrate(list(csv.DictReader(fh)), args.max_fpr, args.max_fnr)
    meta_path = args.weights / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    for branch, (a, b) in fit["platt"].items():
        meta["branches"][branch].update(calib_a=round(a, 5), calib_b=round(b, 5))
    meta["thresholds"] = fit["thresholds"]
    meta["calibration"] = {"source": str(args.items), "items": fit["items"], "max_fpr": args.max_fpr, "max_fnr": args.max_fnr,
                           "method": "Platt scaling per branch on its own family vs all reals; thresholds on the fused score"}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(fit, indent=2))


if __name__ == "__main__":
    main()
