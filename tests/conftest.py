"""Shared fixtures: small synthetic data, the MNIST mirror, and isolated tool state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from l2path.data.dataset import Dataset, make_split

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# One thread for torch and every BLAS and OpenMP pool of the pytest process: with two
# pytest-xdist workers on two cores, OpenBLAS's idle threads spin beside the other worker's
# stage processes, and the in-process study tests took 76-93 s each against 15 s alone.
torch.set_num_threads(1)
threadpool_limits(limits=1)
THREADS_AT_START = threadpool_info()  # BLAS and OpenMP pools as this session began


@pytest.fixture(autouse=True)
def threads_as_the_session_began():
    """Puts the thread pools back after each test. In-process stage code sets its own
    (``tasks/study.py``: torch and BLAS to ``runtime.threads``) for the rest of its process; left
    so, the in-process tests after ``test_scale_out.py`` ran torch's two OpenMP threads beside
    OpenBLAS's spinning ones on 2 cores, about 5x slower than alone (docs/testing.md)."""
    yield
    threadpool_limits(limits=THREADS_AT_START)
    torch.set_num_threads(1)


def synthetic_dataset(n_train=60, n_eval=20, dtype=torch.float64, seed=0) -> Dataset:
    """A tiny MNIST-shaped dataset (784 inputs in [0, 1], 10 classes)."""
    rng = np.random.default_rng(seed)

    def split(count):
        return make_split(rng.random((count, 784)), rng.integers(0, 10, count), dtype)

    return Dataset(split(n_train), split(n_eval), split(n_eval))


@pytest.fixture
def tiny_data() -> Dataset:
    return synthetic_dataset()


def mnist_mirror() -> Path | None:
    """The offline MNIST mirror named by $MNIST_MIRROR (a directory), if it holds the files."""
    candidate = os.environ.get("MNIST_MIRROR")
    if not candidate:
        return None
    path = Path(candidate)
    return (
        path
        if (path / "train-images-idx3-ubyte.gz").exists()
        or (path / "train-images-idx3-ubyte").exists()
        else None
    )


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The MNIST mirror; under CI a missing mirror is a failure, never a skip."""
    path = mnist_mirror()
    if path is None:
        message = (
            "MNIST mirror not found: set MNIST_MIRROR to a directory holding the MNIST IDX files"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's headless Chromium through chromedriver, no network; under CI a missing
    browser is a failure, never a skip (.ci/run installs it). One per module, quit at its end:
    a browser left on the MLflow UI after its server stopped kept a renderer busy (about 15 %
    of a core) through the rest of the suite."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "chromium and chromedriver not found: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def pipeline_repro(mirror, tmp_path_factory):
    """The test run's one small `dvc repro` (``pipeline_repro.PipelineRepro``): tests take a
    copy of it (``copy_to``) and leave the original as it finished. Under pytest-xdist its
    workers share one (in the run's base directory, above each worker's own)."""
    from pipeline_repro import shared_pipeline_repro

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return shared_pipeline_repro(base / "pipeline-repro", mirror)


@pytest.fixture
def prefect_api():
    """In-process flows report to the session's shared Prefect server (started on first use:
    one server per test run instead of one harness per module)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from servers import SHARED_PREFECT

    with temporary_settings(updates={PREFECT_API_URL: SHARED_PREFECT.api_url()}):
        yield


@pytest.fixture(scope="session", autouse=True)
def stop_shared_servers():
    """Stops the session's shared Prefect server (``servers.SHARED_PREFECT``) if a test
    started it."""
    yield
    from servers import SHARED_PREFECT

    SHARED_PREFECT.stop()
