"""Image forensics views on images built here: a JPEG splice for ELA, a periodic pattern for the
spectrum, an added-noise patch for the noise residual."""
from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.forensics import VIEW_GUIDANCE, VIEW_NAMES, VIEW_TITLES, compute_view
from core.forensics.ela import error_level
from core.forensics.noise import noise_residual
from core.forensics.spectrum import face_region, spectrum
from core.forensics.view import fit

PHOTO = skimage.data.astronaut()  # public domain, 512 × 512
INSIDE = (slice(128, 384), slice(128, 384))  # 8-pixel aligned, like JPEG blocks


def _jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _outside(values: np.ndarray) -> np.ndarray:
    mask = np.ones(values.shape[:2], bool)
    mask[INSIDE] = False
    return values[mask]


def test_ela_separates_a_region_with_another_compression_history():
    spliced = _jpeg_round_trip(PHOTO, 98).copy()
    spliced[INSIDE] = _jpeg_round_trip(PHOTO, 50)[INSIDE]  # pasted from a heavily compressed copy
    view = error_level(spliced)
    inside, outside = view.values[INSIDE].mean(), _outside(view.values).mean()
    assert outside > 1.5 * inside  # the low-quality patch has little left to lose at quality 90
    assert view.image.shape == PHOTO.shape[:2] and view.image.dtype == np.uint8


def test_ela_of_a_uniform_history_is_even():
    view = error_level(_jpeg_round_trip(PHOTO, 98))
    inside, outside = view.values[INSIDE].mean(), _outside(view.values).mean()
    assert 0.6 < inside / outside < 1.6


def test_spectrum_shows_the_peak_of_a_periodic_pattern():
    rng = np.random.default_rng(1)
    base = rng.normal(128, 20, (128, 128))
    grating = 30 * np.cos(2 * np.pi * np.arange(128) / 4)[None, :]  # period 4 px along x: 0.25 cycles/px
    plain = spectrum(np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    patterned = spectrum(np.repeat(np.clip(base + grating, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    assert patterned.stats["peak_fx"] == pytest.approx(0.25, abs=0.01)
    assert patterned.stats["peak_fy"] == pytest.approx(0.0, abs=0.01)
    assert patterned.stats["peak_contrast"] > plain.stats["peak_contrast"] + 2.0
    assert "across: every 4.0 px, down: none" in patterned.reading
    assert patterned.image.shape == (128, 128)


def test_spectrum_refuses_a_tiny_region_with_advice():
    with pytest.raises(ValueError, match="at least 32 px"):
        spectrum(PHOTO[:20, :20])


def test_face_region_is_native_resolution_and_clipped():
    crop = face_region(PHOTO, (480.0, 10.0, 60.0, 80.0))  # centre (510, 50), side 1.2 × 80 = 96
    assert np.array_equal(crop, PHOTO[2:98, 462:512])  # cut at the right edge, never resized


def test_noise_residual_is_higher_where_noise_was_added():
    rng = np.random.default_rng(2)
    noisy = PHOTO.astype(np.float32)
    noisy[INSIDE] += rng.normal(0, 12, noisy[INSIDE].shape)
    view = noise_residual(np.clip(noisy, 0, 255).astype(np.uint8))
    assert view.values[INSIDE].mean() > 1.5 * _outside(view.values).mean()


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_every_view_leaves_its_input_alone_and_explains_itself(name):
    before = PHOTO.copy()
    view = compute_view(name, PHOTO, (180.0, 20.0, 120.0, 150.0))
    assert np.array_equal(PHOTO, before)
    assert view.image.dtype == np.uint8 and np.isfinite(view.values).all()
    assert len(view.guidance) > 80 and "\n" not in view.guidance
    assert (view.name, view.guidance) == (VIEW_TITLES[name], VIEW_GUIDANCE[name])  # what the page shows before computing it
    assert view.reading.endswith(".") and not any(key in view.reading for key in view.stats)  # words, not code names


def test_unknown_view_name_says_which_exist():
    with pytest.raises(ValueError, match="ela, spectrum, noise"):
        compute_view("x-ray", PHOTO)


def test_fit_shrinks_only_large_pictures():
    picture = np.zeros((300, 1200), np.uint8)
    assert fit(picture, 600).shape == (150, 600)
    assert fit(picture, 2000) is picture


def test_error_level_analysis_says_why_it_cannot_take_a_very_wide_image():
    with pytest.raises(ValueError, match="at most 65,500 pixels a side"):
        error_level(np.zeros((1, 66_000, 3), np.uint8))
