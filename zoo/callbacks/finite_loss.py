"""Loss sanity: stop as soon as the training loss is NaN or infinite; fail a run whose loss diverged."""

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

import zoo.checks as checks
from zoo.errors import DivergedError, NonFiniteLossError
from zoo.files import LAST_CKPT


class FiniteLossCheck(Callback):
    """Checks the ``train`` loss before backward passes, so broken weights are never saved.

    Every step's loss is tested on the device; the result is read (which waits for the device) every
    ``every_n_steps`` steps and always before validation and the checkpoints written at an epoch's end, so
    ``last.ckpt`` stays the last good epoch's state and ``ckpt_path=last`` resumes from it.

    Args:
        every_n_steps: Steps between reads. 1 stops before the broken step is applied and names it exactly;
            larger values let a GPU run ahead of Python (the error then names the range of steps). ``None``:
            1 on a CPU (a read costs nothing there), ``ACCELERATOR_EVERY_N_STEPS`` on GPUs and other devices.
    """

    ACCELERATOR_EVERY_N_STEPS = 50

    def __init__(self, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None:
            checks.integer("every_n_steps", every_n_steps, note=" (or null)")
        self.every_n_steps = every_n_steps
        self._every = every_n_steps or 1
        self._bad: torch.Tensor | None = None  # device flag: some loss since the last check was not finite
        self._since = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        on_cpu = trainer.strategy.root_device.type == "cpu"
        self._every = self.every_n_steps or (1 if on_cpu else self.ACCELERATOR_EVERY_N_STEPS)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        self._bad = bad if self._bad is None else self._bad | bad
        self._since += 1
        if self._since >= self._every:
            self._check(trainer, pl_module, loss)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, pl_module, None)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module, None)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor | None) -> None:
        bad, self._bad, since, self._since = self._bad, None, self._since, 0
        if bad is None or not bool(bad):
            return
        where = (f"epoch {trainer.current_epoch}, global step {trainer.global_step}" if since <= 1 else
                 f"epoch {trainer.current_epoch}, within the {since} steps before global step {trainer.global_step}")
        value = f" (loss={loss.item()})" if loss is not None and loss.numel() == 1 else ""
        raise NonFiniteLossError(
            f"The training loss became NaN or infinite at {where}{value}. Training stopped; the "
            f"broken weights were not saved. {self._last_good(trainer)} Likely fixes: a smaller learning rate "
            f"(now {self._lr(trainer)}), {self._precision(trainer)}gradient clipping (trainer.gradient_clip_val=1.0)."
        )

    @staticmethod
    def _precision(trainer: L.Trainer) -> str:
        precision = str(trainer.precision)
        return "" if precision.startswith(("32", "64")) else f"trainer.precision=32-true (now {precision}), "

    @staticmethod
    def _lr(trainer: L.Trainer) -> Any:
        lrs = [g.get("lr") for opt in trainer.optimizers for g in opt.param_groups]
        return lrs[0] if len(set(lrs)) == 1 else lrs

    @staticmethod
    def _last_good(trainer: L.Trainer) -> str:
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.dirpath and (Path(cb.dirpath) / LAST_CKPT).is_file():
                path = Path(cb.dirpath) / LAST_CKPT
                return (f"The last good checkpoint is {path}: resume from it with ckpt_path={path} after the "
                        f"fix.")
        return "No checkpoint was written before the failure."


class DivergenceCheck(Callback):
    """Fails a run whose final training loss is far above its starting loss: it diverged, its numbers mean nothing.

    A learning rate far too large can leave the loss finite but huge (``lr=1e9``: ~3e9) and the accuracy at chance;
    such a run must not end like a success. At the end of training the last epoch's ``train/loss`` is compared with
    ``factor x max(first step's loss, ln(num_classes))`` (the loss of the untrained model, and of a uniform guess);
    above it, :class:`~zoo.errors.DivergedError` ends the run (exit code 2, no ``metrics.json``; the checkpoints stay).
    The starting loss is kept in checkpoints, so a resumed run compares with the same value.

    Args:
        factor: How many times the reference loss counts as diverged (> 1).
    """

    def __init__(self, factor: float = 2.0) -> None:
        checks.number("factor", factor, 1, open_low=True)
        self.factor = factor
        self.start_loss: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.start_loss is None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, torch.Tensor) and loss.numel() == 1:
                self.start_loss = float(loss.detach())  # one device read per run

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        final = trainer.callback_metrics.get("train/loss")
        if final is None or self.start_loss is None or not math.isfinite(self.start_loss):
            return
        num_classes = getattr(pl_module, "hparams", {}).get("num_classes")
        chance = math.log(num_classes) if isinstance(num_classes, int) and num_classes > 1 else 0.0
        reference = max(self.start_loss, chance)
        if float(final) > self.factor * reference:
            raise DivergedError(
                f"Training diverged: the final train/loss is {float(final):.4g}, more than {self.factor:g}x the "
                f"starting loss {self.start_loss:.4g} (chance level ln({num_classes}) = {chance:.3g}); the run is not "
                f"a result and no metrics.json was written. Likely fix: a smaller learning rate (now "
                f"{FiniteLossCheck._lr(trainer)}) or gradient clipping (trainer.gradient_clip_val=1.0)."
            )

    def state_dict(self) -> dict[str, Any]:
        return {"start_loss": self.start_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.start_loss = state_dict.get("start_loss", self.start_loss)
