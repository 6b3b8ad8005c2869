"""Progress of a long task: a terminal bar (tqdm: i/N, rate, ETA) and a Prefect progress
artifact that the flow run's page shows (created at 0 %, then updated).

On a terminal the bar redraws itself in place and log records are written above it
(``tqdm.contrib.logging``), so a record never lands on the bar's line. Anywhere else (a log
file, ``dvc repro > log 2>&1``, CI) a carriage return would glue the bar to the next record:
there the bar is a plain line ``what: i/N unit (p %), rate, ETA`` every ``PLAIN_EVERY_S``
seconds and at the end, each written whole.

The artifact is updated at most every ``ARTIFACT_EVERY_S`` seconds (and at the end): each
update is a call to the Prefect API. Outside a Prefect run (a test calling a task's
function) only the bar is drawn. ``advance`` is thread-safe: shards and workers call it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from typing import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

ARTIFACT_EVERY_S = 5.0
PLAIN_EVERY_S = 30.0
_log = logging.getLogger(__name__)


def on_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (where a bar can redraw itself in place)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class PlainLines:
    """The bar as whole lines for a file: one at the start, then at most one every
    ``every`` seconds, and one at the end."""

    def __init__(self, what: str, total: int, unit: str, stream, every: float | None = None):
        self.what, self.total, self.unit, self.stream = what, total, unit, stream
        self.every = PLAIN_EVERY_S if every is None else every
        self.done = 0
        self.started = self.written = time.monotonic()
        self._write()

    def update(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.written >= self.every:
            self._write()

    def close(self) -> None:
        self._write(final=True)

    def _write(self, final: bool = False) -> None:
        self.written = time.monotonic()
        elapsed = self.written - self.started
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        line = f"{self.what}: {self.done}/{self.total}{self.unit}{share}"
        if final:
            line += f" in {elapsed:.0f} s"
        elif self.done and self.total:
            rate = self.done / elapsed
            line += f", {rate:.3g}{self.unit}/s, about {(self.total - self.done) / rate:.0f} s left"
        self.stream.write(line + "\n")
        self.stream.flush()


class Progress:
    def __init__(self, what: str, total: int, unit: str, artifact_key: str):
        self.total = int(total)
        self.done = 0
        self._lock = threading.Lock()
        self._bar = (
            tqdm(
                total=self.total,
                desc=what,
                unit=f" {unit}",
                file=sys.stderr,
                mininterval=1.0,
                dynamic_ncols=True,
            )
            if on_terminal(sys.stderr)
            else PlainLines(what, self.total, f" {unit}", sys.stderr)
        )
        self._key = re.sub(r"[^a-z0-9-]+", "-", artifact_key.lower()).strip("-")
        self._what = what
        self._artifact = self._create_artifact()
        self._pushed = time.monotonic()

    def _create_artifact(self):
        from prefect.artifacts import create_progress_artifact
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return None
        try:
            return create_progress_artifact(progress=0.0, key=self._key, description=self._what)
        except Exception as exc:  # noqa: BLE001 - progress must never stop the work
            _log.warning("no Prefect progress artifact for %s: %s", self._what, exc)
            return None

    def _push(self, force: bool = False) -> None:
        if self._artifact is None or not (
            force or time.monotonic() - self._pushed >= ARTIFACT_EVERY_S
        ):
            return
        from prefect.artifacts import update_progress_artifact

        self._pushed = time.monotonic()
        try:
            update_progress_artifact(self._artifact, progress=self.percent())
        except Exception as exc:  # noqa: BLE001
            _log.warning("Prefect progress artifact of %s not updated: %s", self._what, exc)

    def percent(self) -> float:
        """Done as a percentage; a task with nothing to do is done."""
        return round(100.0 * self.done / self.total, 1) if self.total else 100.0

    def advance(self, count: int = 1, total: int | None = None) -> None:
        """``count`` more items done; ``total`` revises the total (a chain that ended early)."""
        with self._lock:
            if total is not None and total != self.total:
                self.total = self._bar.total = int(total)
            self.done = min(self.done + count, self.total)
            self._bar.update(count)
            self._push()

    def close(self) -> None:
        with self._lock:
            self._bar.close()
            self._push(force=True)


@contextlib.contextmanager
def progress(what: str, total: int, unit: str, artifact_key: str) -> Iterator[Progress]:
    """A progress bar and artifact for ``total`` items of ``unit``; closed (and the artifact
    brought to its final value) when the block ends."""
    bar = Progress(what, total, unit, artifact_key)
    try:
        if isinstance(bar._bar, tqdm):
            # Prefect's console handler is the root logger's: its records go above the bar
            with logging_redirect_tqdm(loggers=[logging.root]):
                yield bar
        else:
            yield bar
    finally:
        bar.close()
