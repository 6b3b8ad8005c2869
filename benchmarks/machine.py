"""The machine a timing was taken on, in one line, so a reader can scale it to theirs.

CPU model and core count (``/proc/cpuinfo``, ``os.cpu_count``), the BLAS PyTorch was built with
and the instruction set it dispatches to (``torch.__config__.show()``,
``torch.backends.cpu.get_cpu_capability()``), and the single-thread sgemm rate measured now:

    python benchmarks/machine.py
    AMD EPYC, 2 cores; torch 2.13.0+cpu, BLAS mkl, ISA AVX2; sgemm 1 thread 33.1 GFLOP/s

The sgemm rate is the number to scale by: the same code ran 2-3x slower on a 2-core machine
whose sgemm was 2-3x slower (docs/benchmarks.md). Every benchmark script prints this line
above its table.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    """The "model name" of /proc/cpuinfo (Linux), else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    import platform

    return platform.processor() or "unknown CPU"


def blas() -> str:
    """The BLAS of PyTorch's build (``BLAS_INFO`` in ``torch.__config__.show()``)."""
    match = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


def sgemm_gflops(size: int = 2048, seconds: float = 1.0) -> float:
    """Single-precision (size x size) @ (size x size) products per second, in GFLOP/s, on the
    torch threads set by the caller."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def describe(gflops: float | None = None) -> str:
    """The one line of the module docstring; ``gflops``: an sgemm rate already measured on one
    thread in this run (else measured here, on one thread)."""
    if gflops is None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            gflops = sgemm_gflops()
        finally:
            torch.set_num_threads(threads)
    return (
        f"{cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, BLAS {blas()}, "
        f"ISA {torch.backends.cpu.get_cpu_capability()}; sgemm 1 thread {gflops:.1f} GFLOP/s"
    )


if __name__ == "__main__":
    print(describe())
