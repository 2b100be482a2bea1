"""Comparisons 1-3: MNIST input pipeline, training-loop overhead, and the MNIST speed run."""

from __future__ import annotations

import shutil
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

from benchmarks.harness import (
    Context,
    EpochTimer,
    Row,
    Side,
    compose_cfg,
    interleave,
    median,
    quiet_lightning,
    skipped,
    timed,
)
from datamodules.mnist import MNISTDataModule
from zoo.errors import DataNotFoundError
from zoo.run.facts import load_data
from zoo.run.runner import train

PIPELINE = "1 image pipeline"
OVERHEAD = "2 training overhead"
SPEED_RUN = "3 MNIST speed run"


def _mnist(ctx: Context, comparison: str, **kwargs: object) -> MNISTDataModule | Row:
    """Our MNIST DataModule, set up on ``ctx.device``; a skipped row when the files are not there."""
    dm = MNISTDataModule(data_dir=ctx.data_dir, download=False, **kwargs)
    try:
        dm.prepare_data()
        dm.setup("fit")
    except DataNotFoundError as err:
        return skipped(comparison, f"no MNIST in {ctx.data_dir} ({str(err).split('.')[0]})")
    # The same Trainer attributes the DataModule reads during `fit` (device, rank, world size).
    dm.trainer = L.Trainer(
        accelerator=ctx.accelerator, devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    return dm


# ------------------------------------------------------------------------------------ 1 pipeline
def image_pipeline(ctx: Context, batch_size: int = 128, max_batches: int | None = None,
                   val_size: int = 5000, num_workers: int = 0) -> list[Row]:
    """Batches per second of our DataModule vs torchvision ``MNIST(transform=ToTensor())`` + ``DataLoader``.

    Both sides read the same training split with the same batch size and deliver float
    ``[B, 1, 28, 28]`` batches on ``ctx.device`` (ours also standardises them).
    """
    with quiet_lightning():
        dm = _mnist(ctx, PIPELINE, batch_size=batch_size, val_size=val_size)
    if isinstance(dm, Row):
        return [dm]
    # The seeds' pipeline, on exactly our training split (same split seed as the DataModule's).
    full = MNIST(str(ctx.data_dir), train=True, transform=ToTensor(), download=False)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(dm.split_seed))
    seed_loader = DataLoader(Subset(full, order[val_size:].tolist()), batch_size=batch_size, shuffle=True,
                             num_workers=num_workers)
    n_batches = len(seed_loader) if max_batches is None else min(max_batches, len(seed_loader))
    epoch = {"n": 0}

    def ours() -> float:
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch["n"])  # what Lightning does at every epoch start
        epoch["n"] += 1

        def run() -> None:
            for x, y in islice(loader, n_batches):
                assert x.device.type == ctx.device.type and y.shape[0] == x.shape[0]

        return timed(ctx, run)

    def seeds() -> float:
        def run() -> None:
            for x, y in islice(seed_loader, n_batches):
                x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)

        return timed(ctx, run)

    times = interleave({"ours": ours, "seeds": seeds}, ctx.repeats, ctx.warmup)
    samples = min(n_batches * batch_size, len(order) - val_size)
    ours_rate, seed_rate = samples / median(times["ours"]), samples / median(times["seeds"])
    ratio = ours_rate / seed_rate
    goal = 20.0 if ctx.cuda else 5.0
    return [Row(
        comparison=PIPELINE, case=f"MNIST train split, batch {batch_size}, {samples:,} samples",
        unit="samples/s", ours=ours_rate, baseline=seed_rate, ratio=ratio, goal=f">= {goal:g}x",
        met=ratio >= goal,
        notes=f"baseline: torchvision MNIST(ToTensor) + DataLoader(shuffle, num_workers={num_workers}) + .to(device)",
        extra={"ours_s": times["ours"], "baseline_s": times["seeds"], "batches": n_batches},
    )]


# ------------------------------------------------------------------------------------ 2 overhead
def _overrides(ctx: Context, *extra: str) -> list[str]:
    return [f"trainer.accelerator={ctx.accelerator}", "data.download=false", *extra]


def raw_epoch(ctx: Context, cfg: DictConfig, dm: MNISTDataModule, n_train: int, n_val: int,
              compile: bool = False) -> Side:
    """A function that runs one epoch of a plain PyTorch loop and returns its seconds.

    The same net, optimizer, tensors, batch order and validation as the zoo's side, built once: each call
    trains on (train steps with loss, backward, step, running loss and accuracy kept on the device), then
    counts correct validation predictions. ``compile``: the net's forward goes through ``torch.compile``
    (compiled in the first call, which a warm-up round absorbs).
    """
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model.net).to(ctx.device)
    forward = torch.compile(net) if compile else net
    optimizer = instantiate(cfg.model.optimizer)(params=net.parameters())
    (x_train, y_train), (x_val, y_val) = dm.splits["train"], dm.splits["val"]
    bs, eval_bs = cfg.data.batch_size, cfg.data.eval_batch_size
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(cfg.data.seed)).to(ctx.device)

    def run() -> None:
        net.train()
        loss_sum = torch.zeros((), device=ctx.device)
        correct = torch.zeros((), device=ctx.device, dtype=torch.long)
        for i in range(n_train):
            idx = order[i * bs : (i + 1) * bs]
            x, y = dm.normalise(x_train[idx]), y_train[idx]
            logits = forward(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(1) == y).sum()
        net.eval()
        val_correct = torch.zeros((), device=ctx.device, dtype=torch.long)
        with torch.no_grad():
            for i in range(n_val):
                x, y = dm.normalise(x_val[i * eval_bs : (i + 1) * eval_bs]), y_val[i * eval_bs : (i + 1) * eval_bs]
                val_correct += (forward(x).argmax(1) == y).sum()
        _ = (loss_sum.item(), correct.item(), val_correct.item())

    return lambda: timed(ctx, run)


def zoo_epoch(ctx: Context, overrides: list[str], run_dir: Path) -> Side:
    """A function that runs ``zoo.run.runner.train`` for one epoch (a fresh run in ``run_dir``) and returns its seconds.

    Timed by :class:`EpochTimer` from ``on_train_epoch_start`` to ``on_train_epoch_end``: the training batches,
    the validation loop and the checkpoint saved at its end; setup and the sanity check are outside.
    """
    overrides = [*overrides, "trainer.max_epochs=1", "test=false",
                 "+callbacks.bench_timer._target_=benchmarks.harness.EpochTimer"]

    def run() -> float:
        shutil.rmtree(run_dir, ignore_errors=True)
        cfg = compose_cfg(overrides, run_dir, ctx.data_dir)
        with quiet_lightning():
            _, objects = train(cfg)
        return next(c for c in objects["callbacks"] if isinstance(c, EpochTimer)).seconds[0]

    return run


class OverheadSetup(NamedTuple):
    """One epoch of ``model`` on MNIST, for both sides of comparison 2: the zoo's overrides, the raw loop's inputs."""

    model: str
    overrides: list[str]
    cfg: DictConfig
    dm: MNISTDataModule
    n_train: int
    n_val: int
    case: str

    def raw(self, ctx: Context, compile: bool = False) -> Side:
        return raw_epoch(ctx, self.cfg, self.dm, self.n_train, self.n_val, compile)


def overhead_setup(ctx: Context, model: str, limit_batches: int | None = None, val_size: int = 5000,
                   batch_size: int = 128) -> OverheadSetup | Row:
    """Both sides' inputs for one epoch of ``model`` on MNIST; a skipped row when the files are not there."""
    with quiet_lightning():
        dm = _mnist(ctx, OVERHEAD, batch_size=batch_size, val_size=val_size)
    if isinstance(dm, Row):
        return dm
    (x_train, _), (x_val, _) = dm.splits["train"], dm.splits["val"]
    dm.splits = {k: (x.to(ctx.device), y.to(ctx.device)) for k, (x, y) in dm.splits.items()}
    n_train = -(-len(x_train) // batch_size)
    n_val = -(-len(x_val) // dm.eval_batch_size)
    limits: list[str] = []
    if limit_batches is not None:
        n_train, n_val = min(n_train, limit_batches), min(n_val, max(1, limit_batches // 10))
        limits = [f"trainer.limit_train_batches={n_train}", f"trainer.limit_val_batches={n_val}"]
    overrides = _overrides(ctx, f"model={model}", "data=mnist", f"data.batch_size={batch_size}",
                           f"data.val_size={val_size}", *limits)
    cfg = compose_cfg(overrides, ctx.work_dir / "raw_cfg", ctx.data_dir)
    with quiet_lightning():
        load_data(cfg)  # fills cfg.facts (the sizes the net is built with)
    case = f"{model}, 1 epoch: {n_train} train + {n_val} val batches (batch {batch_size})"
    return OverheadSetup(model, overrides, cfg, dm, n_train, n_val, case)


def training_overhead(ctx: Context, models: tuple[str, ...] = ("mlp", "cnn"), limit_batches: int | None = None,
                      val_size: int = 5000, batch_size: int = 128) -> list[Row]:
    """One epoch through ``zoo.run.runner.train`` (default config) vs a raw PyTorch loop on the same tensors.

    Ours is the Trainer, callbacks and logger as ``python train.py`` builds them (see :func:`zoo_epoch`).
    """
    rows = []
    for model in models:
        setup = overhead_setup(ctx, model, limit_batches, val_size, batch_size)
        if isinstance(setup, Row):
            return [setup]
        ours = zoo_epoch(ctx, setup.overrides, ctx.work_dir / "overhead" / model)
        times = interleave({"ours": ours, "raw": setup.raw(ctx)}, ctx.repeats, ctx.warmup)
        ours_s, raw_s = median(times["ours"]), median(times["raw"])
        goal = 1.10 if ctx.cuda else 1.05
        rows.append(Row(
            comparison=OVERHEAD, case=setup.case, unit="s/epoch", ours=ours_s, baseline=raw_s, ratio=ours_s / raw_s,
            ratio_kind="overhead", goal=f"<= {goal:.2f}x", met=ours_s / raw_s <= goal,
            notes="ours: train.py stack (default callbacks, csv logger); baseline: raw PyTorch loop",
            extra={"ours_s": times["ours"], "baseline_s": times["raw"]},
        ))
    return rows


# ------------------------------------------------------------------------------------ 3 speed run
def mnist_speed_run(ctx: Context, limit_batches: int | None = None, extra_overrides: tuple[str, ...] = (),
                    val_size: int = 5000) -> list[Row]:
    """``experiment=cnn_mnist_fast`` through ``train()``: fit seconds and test accuracy.

    With ``limit_batches`` (``--quick``), only that many batches of each loop run: the wiring and
    the per-step cost are measured, but the accuracy goal is not judged.
    """
    with quiet_lightning():
        dm = _mnist(ctx, SPEED_RUN, val_size=val_size)
    if isinstance(dm, Row):
        return [dm]
    overrides = _overrides(ctx, "experiment=cnn_mnist_fast", f"data.val_size={val_size}", *extra_overrides)
    if ctx.cuda:
        overrides.append("trainer.precision=bf16-mixed")
    if limit_batches is not None:
        overrides += [f"trainer.limit_{s}_batches={limit_batches}" for s in ("train", "val", "test")]
        # One epoch: the per-step cost is what is measured, and a one-cycle schedule over very few steps
        # (e.g. 2 epochs x 2 batches = 4) hits a zero-length warm-up phase in torch's OneCycleLR.
        overrides.append("trainer.max_epochs=1")
    run_dir = ctx.work_dir / "speed_run"

    def run(warmup: bool = False) -> dict[str, float]:
        shutil.rmtree(run_dir, ignore_errors=True)
        extra = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                 "trainer.max_epochs=1"] if warmup else []
        cfg = compose_cfg([*overrides, *extra], run_dir, ctx.data_dir)
        with quiet_lightning():
            metrics, _ = train(cfg)
        return metrics

    if ctx.cuda:
        run(warmup=True)  # CUDA context, cuDNN autotuning and allocator warm-up, as any timed GPU run needs
    metrics = run()
    acc, fit = metrics.get("test/acc", float("nan")), metrics["fit_seconds"]
    judged = limit_batches is None
    fit_goal = 1.0 if ctx.cuda else None
    met = None
    if judged:
        met = acc >= 0.99 and (fit_goal is None or fit <= fit_goal)
    goal = ">= 0.99 test acc" + (f", fit <= {fit_goal:g} s" if fit_goal else "")
    epochs = int(metrics.get("epochs", 0))
    return [Row(
        comparison=SPEED_RUN, case=f"experiment=cnn_mnist_fast ({epochs} epoch{'s' * (epochs != 1)})",
        unit="fit s", ours=fit, goal=goal, met=met,
        notes=(f"test/acc {acc:.4f}" + ("" if judged else f"; --quick: {limit_batches} batches per loop, goal not judged")
               + ("" if ctx.cuda else "; fit-time goal is for one H100")),
        extra={k: float(v) for k, v in metrics.items()},
    )]
