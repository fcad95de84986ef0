"""`python -m core.compare BASE/items.csv NEW/items.csv`: is one detector better than another?

Two evaluation runs of the same data folder (`python -m core.evaluate`) are matched file by file, and
for every split of the report the AUC of each is given with the paired bootstrap interval of their
difference: both runs are scored on the same resampled files, so the interval is much narrower than
either run's own interval and a gain can be told apart from the luck of one draw of data. Files
without a score in either run are left out. A column other than the fused score (`--column blend`)
compares one branch; AUC does not depend on calibration, so raw and calibrated runs compare fairly.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from core import metrics
from core.evaluate import BRANCHES, ItemRow, build_splits

__all__ = ["read_items", "paired", "paired_auc", "compare", "main"]


def read_items(path: Path, column: str) -> dict[str, ItemRow]:
    """The rows of an items.csv that carry a `column` score and no error, by file path; the score
    goes into `ItemRow.score` so the splits of the report apply unchanged."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and column not in rows[0]:
        raise SystemExit(f"{path} has no column {column!r}")
    return {
        r["path"]: ItemRow(r["path"], r["label"], r["method"], r["kind"], score=float(r[column]))
        for r in rows if r[column] and not r.get("error")
    }


def paired(base: dict[str, ItemRow], new: dict[str, ItemRow]) -> tuple[list[ItemRow], dict[str, float]]:
    """The files scored in both runs (base rows) and the new run's score of each."""
    common = sorted(base.keys() & new.keys())
    return [base[p] for p in common], {p: new[p].score for p in common}


def paired_auc(y: np.ndarray, a: np.ndarray, b: np.ndarray, rounds: int, seed: int) -> dict:
    """AUC of `a` and of `b` on the same items, and the percentile bootstrap 95 % interval of
    AUC(b) − AUC(a) from stratified resamples drawn once for both."""
    diffs = [metrics.roc_auc(y[pick], b[pick]) - metrics.roc_auc(y[pick], a[pick])
             for pick in metrics.stratified_resamples(y, rounds, seed)]
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
    auc_a, auc_b = metrics.roc_auc(y, a), metrics.roc_auc(y, b)
    return {"base": auc_a, "new": auc_b, "diff": auc_b - auc_a, "ci": (float(lo), float(hi))}


def compare(base: dict[str, ItemRow], new: dict[str, ItemRow], rounds: int, seed: int) -> list[dict]:
    """One record per split with both classes present (kind, method, counts, paired AUCs)."""
    rows, new_score = paired(base, new)
    out = []
    for kind, method, split in build_splits(rows):
        y = np.array([r.y for r in split])
        if len(set(y.tolist())) < 2:
            continue
        a = np.array([r.score for r in split])
        b = np.array([new_score[r.path] for r in split])
        out.append({"split": f"{kind}/{method}", "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
                    **paired_auc(y, a, b, rounds, seed)})
    return out


def _table(records: list[dict], only_base: int, only_new: int) -> str:
    lines = ["| split | reals | fakes | AUC base | AUC new | new − base (95 % paired CI) |", "|---|---|---|---|---|---|"]
    for r in records:
        lo, hi = r["ci"]
        lines.append(f"| {r['split']} | {r['n_real']} | {r['n_fake']} | {r['base']:.3f} | {r['new']:.3f} "
                     f"| {r['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    lines.append(f"\nFiles scored in one run only: {only_base} (base), {only_new} (new); left out.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.compare", description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="items.csv of the reference run (e.g. weights/eval/items.csv)")
    parser.add_argument("new", type=Path, help="items.csv of the candidate run, same data folder")
    parser.add_argument("--column", default="score", choices=("score", *BRANCHES, "baseline"),
                        help="which score to compare (default: the fused score)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="paired bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    base, new = read_items(args.base, args.column), read_items(args.new, args.column)
    if not base.keys() & new.keys():
        raise SystemExit("the two runs share no scored file: were they run on the same data folder?")
    records = compare(base, new, args.bootstrap, args.seed)
    print(_table(records, len(base.keys() - new.keys()), len(new.keys() - base.keys())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
