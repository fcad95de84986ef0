"""core.metrics against values computed by hand (the arithmetic is in the comments)."""
import math

import numpy as np
import pytest

from core import metrics

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_auc_of_known_ranking():
    # fake 0.35 beats real 0.1, loses to real 0.4; fake 0.8 beats both: 3 of 4 pairs
    assert metrics.roc_auc(Y, S) == pytest.approx(0.75)


def test_auc_counts_ties_as_half():
    # fake 0.5 ties real 0.5 (1/2) and beats real 0.2 (1); fake 0.9 beats both (2): 3.5 / 4
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert metrics.roc_auc([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.5)


def test_auc_extremes_and_one_class():
    assert metrics.roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert metrics.roc_auc([0, 0, 1], [0.9, 0.8, 0.1]) == 0.0
    assert math.isnan(metrics.roc_auc([0, 0], [0.1, 0.2]))


def test_roc_curve_groups_ties_and_starts_at_origin():
    fpr, tpr, thr = metrics.roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])
    assert thr.tolist() == [np.inf, 0.9, 0.5, 0.2]
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]))


def test_average_precision():
    # thresholds 0.8: P=1 R=.5; 0.4: P=.5 R=.5; 0.35: P=2/3 R=1 -> .5*1 + 0*.5 + .5*2/3
    assert metrics.average_precision(Y, S) == pytest.approx(0.5 + 1 / 3)
    assert metrics.average_precision([0, 1, 1], [0.1, 0.8, 0.9]) == pytest.approx(1.0)
    assert math.isnan(metrics.average_precision([0, 0], [0.1, 0.2]))


def test_eer_at_a_roc_point():
    # threshold 0.6: FPR = 1/2 (real 0.6), FNR = 1/2 (fake 0.4): both rates meet there
    value, threshold = metrics.eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert value == pytest.approx(0.5)
    assert threshold == pytest.approx(0.6)


def test_eer_interpolated_between_points():
    # ROC (fpr, tpr): (0, .5) at 0.9, (.25, .5) at 0.8, (.25, 1) at 0.3; the line tpr = 1 - fpr
    # crosses the vertical segment at fpr = .25
    value, threshold = metrics.eer([0, 0, 0, 0, 1, 1], [0.8, 0.2, 0.1, 0.05, 0.9, 0.3])
    assert value == pytest.approx(0.25)
    assert threshold == pytest.approx(0.3)
    assert metrics.eer([0, 1], [0.1, 0.9])[0] == 0.0
    assert all(math.isnan(v) for v in metrics.eer([1, 1], [0.1, 0.9]))


def test_rates_at_threshold_inclusive():
    # called fake: 0.65 (real, false positive) and 0.7 (fake); 0.3 is a missed fake
    rates = metrics.rates_at([0, 0, 1, 1], [0.1, 0.65, 0.7, 0.3], 0.65)
    assert rates == pytest.approx({"accuracy": 0.5, "tpr": 0.5, "fpr": 0.5})
    only_reals = metrics.rates_at([0, 0], [0.1, 0.9], 0.5)
    assert only_reals["fpr"] == 0.5 and math.isnan(only_reals["tpr"])


def test_brier():
    assert metrics.brier([0, 1], [0.2, 0.7]) == pytest.approx((0.04 + 0.09) / 2)


def test_ece_equal_width_bins():
    # one bin each: |.05-0| + |.15-1| + |.85-1| + |.95-1| = 1.1 over 4 items
    assert metrics.ece([0, 1, 1, 1], [0.05, 0.15, 0.95, 0.85]) == pytest.approx(0.275)
    # both in bin [0.2, 0.3): mean score .25, fraction fake .5
    assert metrics.ece([1, 0], [0.21, 0.29]) == pytest.approx(0.25)
    assert metrics.ece([1], [1.0]) == 0.0  # a score of exactly 1 belongs to the last bin


def test_reliability_bins():
    rows = metrics.reliability([1, 0, 1], [0.21, 0.29, 1.0], bins=5)
    assert [r["count"] for r in rows] == [0, 2, 0, 0, 1]
    assert rows[1]["mean_score"] == pytest.approx(0.25) and rows[1]["fraction_fake"] == pytest.approx(0.5)
    assert math.isnan(rows[0]["mean_score"])


def test_bootstrap_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    fns = {"auc": metrics.roc_auc, "brier": metrics.brier}
    first = metrics.bootstrap_ci(fns, y, s, rounds=300, seed=7)
    assert first == metrics.bootstrap_ci(fns, y, s, rounds=300, seed=7)
    assert first != metrics.bootstrap_ci(fns, y, s, rounds=300, seed=8)
    for name, fn in fns.items():
        lo, hi = first[name]
        assert lo <= fn(y, s) <= hi and lo < hi


def test_bootstrap_undefined_metric_gives_nan_bounds():
    ci = metrics.bootstrap_ci({"auc": metrics.roc_auc}, [0, 0, 0], [0.1, 0.2, 0.3], rounds=20)
    assert all(math.isnan(v) for v in ci["auc"])


def test_mismatched_input_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.roc_auc([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        metrics.brier([0, 2], [0.5, 0.5])
