"""Bad input and a hostile file system, at the stage level: a corrupted prepared file, a
corrupted or unreachable MNIST mirror, a read-only and a full output directory. Each gives
a clear error naming the problem, leaves nothing half-written, and keeps the previous
outputs. The read-only and full directories are real mounts (a read-only bind mount, a
small tmpfs) in a private mount namespace (`unshare`), so the test holds as root too."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from repo_copy import copy_finished, copy_repo, tool_env
from servers import free_port
from study_setup import write_synthetic_split

SMALL_TRAIN = {
    "train.model.n_train": 300,
    "train.epochs": 2,
    "train.model.dtype": "float64",
    "data.public_mirrors": [],
}
CHECKPOINT = "models/train/model.pt"


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def temporaries(root):
    return [
        p
        for d in ("data", "models", "results", "plots", "metrics")
        if (root / d).exists()
        for p in (root / d).rglob("*")
        if p.name.endswith(".tmp")
    ]


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A repo copy on synthetic data whose train stage has run once (the previous outputs)."""
    workdir = tmp_path_factory.mktemp("trained")
    root = copy_repo(workdir / "repo", SMALL_TRAIN)
    write_synthetic_split(root / "data/prepared/mnist.npz", n_train=300, n_eval=100)
    (workdir / "home" / "prefect").mkdir(parents=True)
    assert stage(root, tool_env(root, workdir / "home"), "train").returncode == 0
    return root


@pytest.fixture
def trained(trained_once, tmp_path):
    """A test's own copy of ``trained_once`` (its MLflow store pointed at its own artifacts, as
    a moved store is): the train stage runs once per module, not once per test."""
    root = copy_finished(trained_once, tmp_path / "repo")
    (tmp_path / "home" / "prefect").mkdir(parents=True)
    return root, tool_env(root, tmp_path / "home")


def stage(root, env, name, wrapper=()):
    return subprocess.run(
        [*wrapper, sys.executable, "-m", f"flows.{name}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_runs(root):
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-weight-decay")
    return client.search_runs([experiment.experiment_id], "tags.`l2path.stage` = 'train'")


@functools.lru_cache(maxsize=None)
def unshare_mounts() -> tuple[str, ...]:
    """An ``unshare`` that gives a private mount namespace here: a new user namespace where
    the kernel allows one (any user), else a plain mount namespace (root only)."""
    for command in (("unshare", "--user", "--map-root-user", "--mount"), ("unshare", "--mount")):
        if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
            return command
    pytest.fail(
        "unshare cannot create a mount namespace here: the read-only and full-disk tests need one"
    )


def in_private_mounts(setup: str) -> list[str]:
    """Run the rest of the command after ``setup`` (shell) in a private mount namespace."""
    return [*unshare_mounts(), "sh", "-c", f'{setup} && exec "$@"', "sh"]


@pytest.mark.integration
def test_corrupt_prepared_data_is_named_and_previous_outputs_kept(trained):
    root, env = trained
    before = md5(root / CHECKPOINT)
    data = root / "data/prepared/mnist.npz"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    out = stage(root, env, "train")
    assert out.returncode != 0
    assert "data/prepared/mnist.npz is not a readable prepared split" in out.stderr
    assert "dvc repro prepare" in out.stderr
    assert md5(root / CHECKPOINT) == before and not temporaries(root)


@pytest.mark.integration
@pytest.mark.parametrize("mirror_kind", ["unreachable", "corrupted"])
def test_bad_mirror_fails_clearly_and_keeps_previous_data(mirror_kind, mirror, trained, tmp_path):
    root, env = trained
    previous = md5(root / "data/prepared/mnist.npz")
    if mirror_kind == "unreachable":
        source = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
        expected = f"cannot reach {source}"
    else:
        source = tmp_path / "mirror"
        shutil.copytree(mirror, source)
        for path in source.glob("train-images*"):  # the largest file, cut short
            path.write_bytes(path.read_bytes()[:100_000])
        expected = "train-images"
    out = stage(root, {**env, "MNIST_MIRROR": str(source)}, "prepare")
    assert out.returncode != 0
    assert expected in out.stderr and "MNIST_MIRROR" in out.stderr
    assert md5(root / "data/prepared/mnist.npz") == previous
    assert not (root / "data/raw").exists() or not any((root / "data/raw").iterdir())
    assert not temporaries(root)


@pytest.mark.integration
def test_read_only_output_directory_fails_before_any_work(trained):
    root, env = trained
    before, runs_before = md5(root / CHECKPOINT), len(train_runs(root))
    read_only = in_private_mounts(
        "mount --bind models/train models/train && mount -o remount,bind,ro models/train"
    )
    out = stage(root, env, "train", wrapper=read_only)
    assert out.returncode != 0
    assert "models/train is not writable" in out.stderr and "Read-only file system" in out.stderr
    assert "nothing was started" in out.stderr and "epoch 1/" not in out.stdout + out.stderr
    assert len(train_runs(root)) == runs_before  # no MLflow run was opened
    assert md5(root / CHECKPOINT) == before and not temporaries(root)


@pytest.mark.integration
def test_full_output_directory_keeps_the_previous_checkpoint(trained, tmp_path):
    root, env = trained
    saved = tmp_path / "model.pt"
    shutil.copy2(root / CHECKPOINT, saved)
    size_kib = (
        saved.stat().st_size // 1024 + 16
    )  # room for the previous checkpoint, not for a second one
    full = in_private_mounts(
        f"mount -t tmpfs -o size={size_kib}k tmpfs models/train && cp {saved} models/train/"
    )
    # After the stage fails, look inside the namespace (the tmpfs vanishes with it).
    check = [
        *full,
        "sh",
        "-c",
        f"{sys.executable} -m flows.train; echo rc=$?; "
        "md5sum models/train/model.pt; ls -A models/train",
    ]
    out = subprocess.run(check, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert "rc=1" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"cannot write {CHECKPOINT}" in out.stderr and "No space left on device" in out.stderr
    assert "its previous version is unchanged" in out.stderr
    listing = out.stdout.split("rc=1", 1)[1].split()
    assert listing[0] == md5(saved) and listing[1:] == [
        CHECKPOINT,
        "model.pt",
    ]  # no temporary file left
