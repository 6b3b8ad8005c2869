"""Jobs side by side in spawned processes, one BLAS thread each, their log lines forwarded to the
parent's logger.

Threads of one process share the GIL: the Python-bound parts of a chain (L-BFGS's loop, GMRES,
the autograd dispatch of small products) ran one at a time, so two chain jobs on two threads
took about twice as long each as alone. Processes do not share it.

``worker_map(workers, threads, log)`` is what a stage calls: ``process_map`` for two workers or
more, else ``(map, log)`` in this process with ``threads`` torch threads.
``process_map(workers, log)`` yields ``(map_, child_log)``: ``map_(function, items)`` is
``ProcessPoolExecutor.map`` (results in item order; ``function`` and the items must pickle, e.g. a
``functools.partial`` of a module-level function), and ``child_log`` a picklable callable whose
messages, sent from a job, reach ``log`` in the parent. A job whose parent has died (a killed
stage) exits at its next log line instead of running on unseen.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_queue = None  # in a worker: the parent's log queue
_parent = None  # in a worker: the parent's pid
_limits = None  # in a worker: the BLAS thread limit, kept alive


def _start_worker(queue, parent: int) -> None:
    global _queue, _parent, _limits
    import torch
    from threadpoolctl import threadpool_limits

    _queue, _parent = queue, parent
    torch.set_num_threads(1)
    _limits = threadpool_limits(1)


class ChildLog:
    """A job's log: each message goes to the parent's logger (``process_map``)."""

    def __call__(self, message: str) -> None:
        if os.getppid() != _parent:  # the stage was killed: nobody reads this job's results
            os._exit(1)
        _queue.put(message)


def _forward(queue, log: Callable[[str], None]) -> None:
    while (message := queue.get()) is not None:
        log(message)


@contextmanager
def process_map(workers: int, log: Callable[[str], None]) -> Iterator[tuple[Callable, ChildLog]]:
    """See the module."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    forwarder = threading.Thread(target=_forward, args=(queue, log), daemon=True)
    forwarder.start()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(queue, os.getpid())
        ) as pool:
            yield pool.map, ChildLog()
    finally:
        queue.put(None)
        forwarder.join()


@contextmanager
def worker_map(workers: int, threads: int, log: Callable[[str], None]) -> Iterator[tuple]:
    """See the module."""
    if workers > 1:
        with process_map(workers, log) as pool:
            yield pool
        return
    import torch

    torch.set_num_threads(threads)
    yield map, log
