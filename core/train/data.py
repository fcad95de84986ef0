"""Training samples for both branches, drawn from the crop cache of `core.train.cache`."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.train.augment import CODEC_CRF, colour_cast, degrade, generator_traces, glasses, h264, inference_crop, photo_look, seen_small, skin_smoothing, tight_frame, upsampling_chain, native_chain
from core.train.cache import CACHE_MARGIN
from core.train.sbi import NOISE_KINDS, composite_blend, renoise, self_blend, swap_blend

__all__ = ["Pool", "BlendMix", "SyntheticMix", "load_pools", "draw_reals", "finish_crop", "blend_batch", "synthetic_batch", "BLEND_MIX", "TILT_MAX"]

# Share of each real source in the blend branch: video frames are a third because the product
# mostly judges video frames; aligned stills and in-the-wild photos make up the rest.
BLEND_MIX = {"video": 0.34, "utkface": 0.33, "nomask": 0.23, "gan_real": 0.10}
# Heads tilt (roll) freely in photos and video; UTKFace's are aligned upright. The shipped blend branch
# read a tilt of 3 to 6 degrees as a cue (core.train.validate), so pairs may be turned alike up to this.
TILT_MAX = 20.0


@dataclass
class Pool:
    crops: np.ndarray
    landmarks: np.ndarray
    groups: np.ndarray
    dense: np.ndarray | None = None  # 68 points per crop (core.train.dense), NaN where dlib failed

    def take(self, keep: np.ndarray) -> "Pool":
        return Pool(self.crops[keep], self.landmarks[keep], self.groups[keep], None if self.dense is None else self.dense[keep])

    def dense_at(self, i: int) -> np.ndarray | None:
        points = None if self.dense is None else self.dense[i]
        return points if points is not None and np.isfinite(points).all() else None


def _split(pool: Pool, held_out: float, seed: int) -> tuple[Pool, Pool]:
    """Split by group (a file, or a whole video clip), never by frame."""
    groups = np.unique(pool.groups)
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(groups, max(1, int(round(len(groups) * held_out))), replace=False))
    mask = np.array([g in chosen for g in pool.groups])
    return pool.take(~mask), pool.take(mask)


def load_pools(cache: Path, held_out: float = 0.08, seed: int = 0) -> tuple[dict[str, Pool], dict[str, Pool]]:
    """(train, held-out) pools per source."""
    train, val = {}, {}
    for path in sorted(cache.glob("*.npz")):
        dense = path.with_suffix(".dense.npy")
        with np.load(path) as z:
            pool = Pool(z["crops"], z["landmarks"], z["groups"], np.load(dense) if dense.exists() else None)
        train[path.stem], val[path.stem] = _split(pool, held_out, seed)
    return train, val


def finish_crop(img: np.ndarray, size: int, seed: int, tight: float = 0.0, degraded: bool = True, codec: float = 0.0,
                angle: float = 0.0) -> np.ndarray:
    """Degradation (unless not `degraded`), then with `codec` > 0 an H.264 encoding at a CRF and a
    size between `codec` and 1 of the crop's drawn by the seed, framing (share `tight` cut close
    around the face) and inference crop, turned `angle` degrees; the same seed gives a pair the same of each."""
    rng = np.random.default_rng(seed)
    out = degrade(img, seed) if degraded else img
    if codec:
        crfs = CODEC_CRF[1] - CODEC_CRF[0] + 1
        out = h264(out, CODEC_CRF[0] + seed % crfs, codec + (1.0 - codec) * (seed // crfs % 101) / 100)
    if tight and rng.random() < tight:
        out = tight_frame(out, CACHE_MARGIN, rng)
    return inference_crop(out, CACHE_MARGIN, size, rng, flip=bool(seed % 2), angle=angle)


@dataclass(frozen=True)
class BlendMix:
    """What a blend batch mixes in, each a share: of twins blended from another face (`swaps`, Face
    X-ray style) or from parts of several (`composites`), masked along the 68-point outline where
    the cache has it (`dense`), pasted from a sharpened, never down-scaled source (`crisp`), pasted
    in the gradient domain (`poisson`, a seamless clone) or
    given another noise history inside the blend (`noisy`, of `noise_kinds`); of pairs wearing the
    same drawn glasses, framed close around the face (`tight`), skin-smoothed alike (`beauty`),
    given the same edited photo look (`look`), tilted alike by up to TILT_MAX degrees (`tilt`),
    left undegraded (`clean`) or encoded alike as H.264 video at a high CRF (`codec`), at a size down to
    `codec_scale` of the crop's."""
    swaps: float = 0.0
    composites: float = 0.0
    crisp: float = 0.0
    dense: float = 0.0
    noisy: float = 0.0
    poisson: float = 0.0
    glasses: float = 0.0
    tight: float = 0.0
    beauty: float = 0.0
    look: float = 0.0
    tilt: float = 0.0
    clean: float = 0.0
    codec: float = 0.0
    codec_scale: float = 1.0
    noise_kinds: tuple[str, ...] = NOISE_KINDS


def _twin(pool: Pool, i: int, rng: np.random.Generator, mix: BlendMix) -> tuple[np.ndarray, np.ndarray]:
    """(pseudo-fake, blend mask) of crop `i`: self-blended, swap-blended or a part composite."""
    fake, mask = _blended(pool, i, rng, mix)
    if mix.noisy and rng.random() < mix.noisy:  # no draw when off: earlier runs' streams stay as they were
        fake = renoise(fake, mask, rng, mix.noise_kinds)
    return fake, mask


def _blended(pool: Pool, i: int, rng: np.random.Generator, mix: BlendMix) -> tuple[np.ndarray, np.ndarray]:
    kind = rng.random()
    crisp = bool(mix.crisp) and rng.random() < mix.crisp  # no draw when off, as above
    dense = pool.dense_at(i) if mix.dense and rng.random() < mix.dense else None
    poisson = bool(mix.poisson) and rng.random() < mix.poisson
    if kind >= mix.swaps + mix.composites:
        return self_blend(pool.crops[i], pool.landmarks[i], rng, crisp=crisp, dense=dense, poisson=poisson)
    if kind < mix.swaps:
        j = int(rng.integers(len(pool.crops)))
        return swap_blend(pool.crops[i], pool.landmarks[i], pool.crops[j], pool.landmarks[j], rng, crisp=crisp, dense=dense, poisson=poisson)
    donors = [(pool.crops[j], pool.landmarks[j]) for j in rng.integers(len(pool.crops), size=4)]
    return composite_blend(pool.crops[i], pool.landmarks[i], donors, rng, crisp, dense, poisson)


def draw_reals(pools: dict[str, Pool], count: int, rng: np.random.Generator) -> Iterator[tuple[Pool, int]]:
    """`count` real crops (pool, index), sources drawn by BLEND_MIX; each index is drawn as it is
    taken, so what the caller draws in between keeps its place in the random stream."""
    names = [n for n in BLEND_MIX if n in pools]
    weights = np.array([BLEND_MIX[n] for n in names])
    for name in rng.choice(names, count, p=weights / weights.sum()):
        yield pools[name], int(rng.integers(len(pools[name].crops)))


def blend_batch(pools: dict[str, Pool], pairs: int, size: int, rng: np.random.Generator, mix: BlendMix = BlendMix(),
                degraded: bool = True) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """`pairs` reals and their blended twins, with each image's blend mask cropped alike (zero for a
    real); each pair shares crop, flip, degradation, framing, tilt and any glasses, skin smoothing or look."""
    images, labels, masks = [], [], []
    for pool, i in draw_reals(pools, pairs, rng):
        real, (fake, mask) = pool.crops[i], _twin(pool, i, rng, mix)
        seed = int(rng.integers(1 << 31))
        if mix.glasses and rng.random() < mix.glasses:
            real, fake = (glasses(img, pool.landmarks[i], seed) for img in (real, fake))
        if mix.beauty and rng.random() < mix.beauty:
            real, fake = (skin_smoothing(img, seed) for img in (real, fake))
        if mix.look and rng.random() < mix.look:
            real, fake = (photo_look(img, seed) for img in (real, fake))
        pair_degraded = degraded and not (mix.clean and rng.random() < mix.clean)
        codec = mix.codec_scale if degraded and mix.codec and rng.random() < mix.codec else 0.0  # no draw when off, as above
        angle = rng.uniform(-TILT_MAX, TILT_MAX) if mix.tilt and rng.random() < mix.tilt else 0.0
        images += [finish_crop(img, size, seed, mix.tight, pair_degraded, codec, angle) for img in (real, fake)]
        masks += [np.zeros((size, size), np.float32), finish_crop(mask, size, seed, mix.tight, degraded=False, angle=angle)]
        labels += [0.0, 1.0]
    return images, np.array(labels, np.float32), np.stack(masks)


@dataclass(frozen=True)
class SyntheticMix:
    """What a synthetic batch mixes in, each a share: of fakes that are real faces with simulated
    generator traces instead of GAN faces (`traces`; 1.0 trains without a single generated face, which
    measures how far the simulation alone carries to a generator it never saw), of those traces drawn
    as an up-sampling chain (`chain`, `upsampling_chain`) rather than `generator_traces`, and of those
    chains drawn at a generator's own resolution (`native`, `native_chain`); of faces,
    reals and fakes alike, given a random colour rendering (`colour`, `colour_cast`), seen as a small
    face enlarged to the input (`small`, `seen_small`) or encoded as H.264 video at a high CRF (`codec`:
    otherwise only real video frames carry a codec's block structure, which up-sampling traces resemble)."""
    traces: float = 0.25
    chain: float = 0.0
    native: float = 0.0
    colour: float = 0.0
    small: float = 0.0
    codec: float = 0.0


def synthetic_batch(pools: dict[str, Pool], count: int, size: int, rng: np.random.Generator, mix: SyntheticMix = SyntheticMix(),
                    degraded: bool = True) -> tuple[list[np.ndarray], np.ndarray]:
    """Half fakes (GAN faces, or reals with simulated generator traces), half reals from every source,
    mixed as `mix` says."""
    # Video frames weigh most among reals: soft, compressed real video faces were the synthetic
    # branch's main false positives on dev (3 of 5 real videos with 20% video reals).
    weights = {"gan_real": 0.3, "video": 0.35, "utkface": 0.15, "nomask": 0.2}
    reals = [n for n in weights if n in pools]
    real_weights = np.array([weights[n] for n in reals])
    images, labels = [], []
    for k in range(count):
        fake = k % 2 == 1
        if fake and rng.random() >= mix.traces:
            pool = pools["gan_fake"]
        else:
            pool = pools[str(rng.choice(reals, p=real_weights / real_weights.sum()))]
        img = pool.crops[int(rng.integers(len(pool.crops)))]
        if fake and pool is not pools.get("gan_fake"):
            # no draw when off: earlier runs' streams stay as they were (as for colour and small)
            chained = bool(mix.chain) and rng.random() < mix.chain
            native = chained and bool(mix.native) and rng.random() < mix.native
            img = native_chain(img, rng) if native else upsampling_chain(img, rng) if chained else generator_traces(img, rng)
        if mix.colour and rng.random() < mix.colour:
            img = colour_cast(img, rng)
        codec = 1.0 if degraded and mix.codec and rng.random() < mix.codec else 0.0
        crop = finish_crop(img, size, int(rng.integers(1 << 31)), degraded=degraded, codec=codec)
        if mix.small and rng.random() < mix.small:
            crop = seen_small(crop, rng)
        images.append(crop)
        labels.append(float(fake))
    return images, np.array(labels, np.float32)
