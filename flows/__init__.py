"""Prefect flows, one per DVC stage, each runnable as ``python -m flows.<stage>``.

Run that way, a stage says so at once: importing its flow (Prefect, MLflow, torch) takes
seconds before any of its code runs, and a silent start looks like a hang.
"""

import sys
import time


def _announce_start() -> None:
    argv = getattr(sys, "orig_argv", [])
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("flows."):
        stage = argv[argv.index("-m") + 1].removeprefix("flows.")
        print(f"{time.strftime('%H:%M:%S')} stage {stage}: starting", file=sys.stderr, flush=True)


_announce_start()
