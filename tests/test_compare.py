"""core.compare: two evaluation runs matched file by file, paired bootstrap of the AUC difference."""
from __future__ import annotations

import csv
from dataclasses import fields

import numpy as np
import pytest

from core import compare
from core.evaluate import ItemRow


def _write(path, rows: list[ItemRow]) -> None:
    names = [f.name for f in fields(ItemRow)]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, names)
        writer.writeheader()
        for row in rows:
            writer.writerow({n: "" if getattr(row, n) is None else getattr(row, n) for n in names})


def _runs(tmp_path, new_scores, base_scores):
    """Ten reals then ten spliced fakes; the scores given per file, in that order."""
    items = [("real", "yonsei")] * 10 + [("fake", "splice")] * 10
    def rows(scores):
        return [ItemRow(f"{label}/{method}/{i}.jpg", label, method, "image", score=s, blend=s)
                for i, ((label, method), s) in enumerate(zip(items, scores))]
    _write(tmp_path / "base.csv", rows(base_scores))
    _write(tmp_path / "new.csv", rows(new_scores))
    return tmp_path / "base.csv", tmp_path / "new.csv"


def test_a_clear_gain_has_an_interval_above_zero(tmp_path):
    rng = np.random.default_rng(1)
    base, new = _runs(tmp_path, new_scores=[0.1] * 10 + [0.9] * 10, base_scores=rng.uniform(0, 1, 20).round(3))
    records = compare.compare(compare.read_items(base, "score"), compare.read_items(new, "score"), 500, 0)
    assert [r["split"] for r in records] == ["image/splice", "image/all"]
    first = records[0]
    assert first["new"] == 1.0 and first["base"] < 0.8
    assert first["ci"][0] > 0 and first["diff"] == pytest.approx(first["new"] - first["base"])


def test_identical_runs_differ_by_exactly_zero(tmp_path):
    scores = np.linspace(0, 1, 20).round(3)
    base, _ = _runs(tmp_path, scores, scores[::-1])
    same = compare.read_items(base, "blend")
    record = compare.compare(same, same, 200, 0)[0]
    assert record["diff"] == 0 and record["ci"] == (0.0, 0.0)


def test_only_files_scored_in_both_runs_are_paired(tmp_path):
    base, new = _runs(tmp_path, [0.5] * 20, [0.5] * 20)
    a, b = compare.read_items(base, "score"), compare.read_items(new, "score")
    a.pop("real/yonsei/0.jpg")
    b.pop("fake/splice/19.jpg")
    rows, new_score = compare.paired(a, b)
    assert len(rows) == 18 and set(new_score) == {r.path for r in rows}


def test_rows_with_an_error_or_no_score_are_left_out(tmp_path):
    rows = [ItemRow("real/a/1.jpg", "real", "a", "image", score=0.2),
            ItemRow("real/a/2.jpg", "real", "a", "image", score=None),
            ItemRow("fake/m/3.jpg", "fake", "m", "image", score=0.9, error="unreadable")]
    _write(tmp_path / "items.csv", rows)
    assert list(compare.read_items(tmp_path / "items.csv", "score")) == ["real/a/1.jpg"]


def test_the_command_prints_a_table_and_refuses_unrelated_runs(tmp_path, capsys):
    base, new = _runs(tmp_path, [0.2] * 10 + [0.8] * 10, [0.5] * 20)
    assert compare.main([str(base), str(new), "--column", "blend", "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert "| image/splice | 10 | 10 | 0.500 | 1.000 | +0.500" in out
    _write(tmp_path / "other.csv", [ItemRow("real/x/9.jpg", "real", "x", "image", score=0.1)])
    with pytest.raises(SystemExit, match="share no scored file"):
        compare.main([str(base), str(tmp_path / "other.csv")])
    with pytest.raises(SystemExit, match="no column 'nope'"):
        compare.read_items(base, "nope")
