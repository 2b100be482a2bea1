"""A console log handler that keeps log lines off the progress bar (only tqdm is imported here: the logging
configuration of ``configs/hydra/default.yaml`` loads it before the run imports torch)."""

import contextlib
import logging


def _classes_with_bars() -> list[type]:
    """tqdm and each subclass of it (Lightning's ``Tqdm``, ...) that has bars alive now."""
    from tqdm import std

    todo, found = [std.tqdm], []
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__dict__.get("_instances"):
            found.append(cls)
    return found


class BarAwareStreamHandler(logging.StreamHandler):
    """``logging.StreamHandler`` that, while a progress bar is on screen, clears it, writes the line on a line of
    its own and draws the bar again below (tqdm's ``external_write_mode``), instead of appending the line to it."""

    def emit(self, record: logging.LogRecord) -> None:
        classes = _classes_with_bars()
        if not classes:
            super().emit(record)
            return
        with contextlib.ExitStack() as bars_aside:
            for cls in classes:
                bars_aside.enter_context(cls.external_write_mode(file=self.stream))
            super().emit(record)
