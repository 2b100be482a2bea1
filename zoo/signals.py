"""Stop signals: SIGTERM or Ctrl-C ends a run with 143 or 130 (never 0) and one line on how to go on, inside a
Lightning stage at the next batch. SIGUSR1 requeues a SLURM job (at most ``max_requeues`` times)."""

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from zoo.files import CHECKPOINT_DIR, LAST_CKPT

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger("zoo")

NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGUSR1: "SIGUSR1"}
_state: dict = {"stage": None, "received": None, "hint": None, "max_requeues": 0}
_on_stop: list[Callable[[], None]] = []


def received() -> int | None:
    """The signal that asked this process to stop, if one did."""
    return _state["received"]


def exit_code(signum: int) -> int:
    return 128 + (signal.SIGTERM if signum == signal.SIGUSR1 else signum)


def install(hint: Callable[[], str], max_requeues: int = 0) -> None:
    """Handle SIGTERM, SIGINT and (in a SLURM batch job) SIGUSR1 in this process; ``hint()`` says how to go on."""
    if threading.current_thread() is not threading.main_thread():
        return  # Python delivers signals to the main thread only
    _state.update(hint=hint, max_requeues=max_requeues)
    in_slurm_job = "SLURM_JOB_ID" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")
    for signum in (signal.SIGTERM, signal.SIGINT, *((signal.SIGUSR1,) if in_slurm_job else ())):
        signal.signal(signum, _handle)


def on_stop(hook: Callable[[], None]) -> None:
    """Call ``hook`` once, first, when a stop signal arrives (e.g. end a sweep's worker processes)."""
    _on_stop.append(hook)


def remove_on_stop(hook: Callable[[], None]) -> None:
    if hook in _on_stop:
        _on_stop.remove(hook)


def _handle(signum: int, frame: FrameType | None) -> None:
    first = _state["received"] is None
    _state["received"] = signum
    while _on_stop:
        _on_stop.pop()()
    if signum == signal.SIGUSR1:
        if first:
            _requeue_or_stop()
    elif _state["stage"] is None:
        _stop(signum)
    elif signum == signal.SIGINT:  # Lightning stops at the next batch; exit_code_on_signal says the rest
        raise KeyboardInterrupt


def _requeue_or_stop() -> None:
    """SLURM's early warning: requeue this job (rank zero), or stop it with a resume hint past the budget."""
    if os.environ.get("SLURM_PROCID", "0") != "0":
        return  # rank zero requeues the whole job; SLURM then stops every rank
    job = os.environ["SLURM_JOB_ID"]
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if restarts < _state["max_requeues"]:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if done.returncode == 0:
            log.warning("SLURM asked job %s to stop (SIGUSR1): requeued it (requeue %d of at most %d); it resumes "
                        "in the same run directory from its last finished epoch.", job, restarts + 1,
                        _state["max_requeues"])
            return  # SLURM now sends SIGTERM
        log.error("scontrol requeue %s failed: %s", job, (done.stderr or done.stdout).strip())
    else:
        log.error("SLURM asked job %s to stop (SIGUSR1) and it was requeued %d time(s) already (max_requeues=%d).",
                  job, restarts, _state["max_requeues"])
    os.kill(os.getpid(), signal.SIGTERM)  # stop like SIGTERM: exit 143 with the resume hint


def _stop(signum: int, where: str = "") -> NoReturn:
    hint = _state["hint"]() if _state["hint"] else "Run the same command again."
    log.error("Stopped by %s%s. %s", NAMES.get(signum, signum), where, hint)
    raise SystemExit(exit_code(signum))


def run_hint(run_dir: str | Path, trained: bool = True) -> str:
    """How to go on with the run in ``run_dir``, naming only files that exist."""
    if not trained:
        return "No metrics.json was written. Run the same eval.py command again."
    last = Path(run_dir) / CHECKPOINT_DIR / LAST_CKPT
    if last.is_file():
        return (f"{last} holds the last finished epoch: resume with the same command plus ckpt_path=last "
                f"hydra.run.dir={run_dir} (or auto_resume=true).")
    return f"No epoch had finished, so there is nothing to resume: run the same command again (hydra.run.dir={run_dir})."


@contextmanager
def exit_code_on_signal(trainer: "L.Trainer", stage: str) -> Iterator[None]:
    """Around ``trainer.fit`` or ``trainer.test`` (``stage``): a stop signal exits 143 or 130, never 0.
    Lightning exits 0 on SIGTERM, 1 on Ctrl-C, and finishes a stage whose last batch the signal reached (a
    finished test's result is written first: :func:`exit_if_signalled`)."""
    from lightning.pytorch.trainer.states import TrainerStatus

    _state["stage"] = trainer
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as stop:
        if isinstance(stop, SystemExit) and not (trainer.received_sigterm or _state["received"]) \
                and trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        _exit(trainer, stage)
    finally:
        _state["stage"] = None
    if stage == "fit" and (trainer.received_sigterm or _state["received"]):
        _exit(trainer, stage)  # fitting finished at the signal: stop before testing


def exit_if_signalled(trainer: "L.Trainer") -> None:
    """After a complete result is written: exit 143/130 if a signal arrived meanwhile (a sweep must stop)."""
    if trainer.received_sigterm or _state["received"]:
        _exit(trainer, "end")


def _exit(trainer: "L.Trainer", stage: str) -> NoReturn:
    signum = _state["received"] or (signal.SIGTERM if trainer.received_sigterm else signal.SIGINT)
    _stop(signum, {"fit": f" during epoch {trainer.current_epoch}", "test": " while testing",
                   "end": " as the run ended (its metrics.json is complete)"}[stage])
