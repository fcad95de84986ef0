"""Platt scaling and threshold choice on known data."""
import numpy as np

from core.calibrate import apply_platt, calibrate, choose_thresholds, fit_platt


def test_fit_platt_recovers_known_parameters():
    rng = np.random.default_rng(0)
    raw_logit = rng.normal(0, 2, 20000)
    true_a, true_b = 0.5, -1.0
    labels = rng.random(raw_logit.size) < 1 / (1 + np.exp(-(true_a * raw_logit + true_b)))
    a, b = fit_platt(1 / (1 + np.exp(-raw_logit)), labels)
    assert abs(a - true_a) < 0.05 and abs(b - true_b) < 0.08


def test_fit_platt_stays_finite_when_classes_overlap():
    probs = np.array([0.01, 0.99, 0.01, 0.99, 0.5, 0.5])
    labels = np.array([1, 0, 0, 1, 1, 0])
    a, b = fit_platt(probs, labels)
    assert np.isfinite([a, b]).all() and abs(a) < 1.0
    assert np.all(np.abs(apply_platt(probs, a, b) - 0.5) < 0.2)


def test_thresholds_keep_the_false_positive_rate():
    reals = np.linspace(0.0, 0.9, 100)  # 5% of reals lie above 0.855
    fakes = np.linspace(0.3, 1.0, 50)
    t = choose_thresholds(reals, fakes, max_fpr=0.05, max_fnr=0.10)
    assert np.mean(reals >= t["fake"]) <= 0.05
    assert np.mean(reals >= t["fake"] - 0.02) > 0.05  # the lowest such threshold, not any
    assert np.mean(fakes <= t["real"]) <= 0.10
    assert t["real"] <= t["fake"]


def test_calibrate_fits_each_branch_on_its_own_family():
    # Each branch separates its own family and scores the other family's fakes below the reals, so a
    # branch fitted on every fake would get a flat or falling map instead of a steep one.
    rows = []
    rng = np.random.default_rng(1)
    for _ in range(200):
        rows.append({"label": "real", "method": "cam", "blend": rng.uniform(0.2, 0.5), "synthetic": rng.uniform(0.2, 0.5), "error": ""})
        rows.append({"label": "fake", "method": "stylegan2", "blend": rng.uniform(0, 0.2), "synthetic": rng.uniform(0.5, 1), "error": ""})
        rows.append({"label": "fake", "method": "photoshop_splice", "blend": rng.uniform(0.5, 1), "synthetic": rng.uniform(0, 0.2), "error": ""})
    fit = calibrate(rows, max_fpr=0.05, max_fnr=0.1)
    assert fit["platt"]["blend"][0] > 1 and fit["platt"]["synthetic"][0] > 1
    assert fit["items"] == 600


def test_calibrate_skips_failed_and_unscored_rows():
    good = {"label": "real", "method": "cam", "blend": 0.3, "synthetic": 0.3, "error": ""}
    rows = [good, {**good, "label": "fake", "method": "stylegan2", "synthetic": 0.9}, {**good, "blend": ""}, {**good, "error": "no face"}]
    assert calibrate(rows * 5, max_fpr=0.05, max_fnr=0.1)["items"] == 10
