"""dvc.yaml's top-level plots keep their data when the dynamics params change: the plot
tables name their columns by setting and initialiser, never by a param value, and the plots
name their files through params.yaml's paths."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from l2path import atomic
from l2path.config import Dynamics
from l2path.dynamics.tables import PLOT_NAMES, curves, plot_tables
from l2path.dynamics.theory import theory_table
from l2path.dynamics.training import run_dynamics

from conftest import REPO, synthetic_dataset

INTERPOLATED = re.compile(r"\$\{paths\.(\w+)\}")


def changed_copy(root: Path) -> dict:
    """dvc.yaml and params.yaml in ``root``, the question's eta and lambda and the book's eta
    changed, the run shrunk to a few epochs of a small network; returns the params."""
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    dynamics = raw["dynamics"]
    dynamics.update(eta=0.2, lambdas=[3.0, 0.0], epochs=3, question_epochs=2, workers=1)
    dynamics["book"].update(eta=0.3, epochs=2)
    dynamics["sweep"].update(epochs=2)
    dynamics["model"].update(sizes=[784, 6, 10], dtype="float64", n_train=None)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return raw


def resolve(text: str, paths: dict) -> str:
    return INTERPOLATED.sub(lambda match: paths[match.group(1)], text)


def test_every_plotted_column_exists_after_eta_and_lambda_change(tmp_path):
    raw = changed_copy(tmp_path)
    paths, config = raw["paths"], Dynamics.model_validate(raw["dynamics"])
    frame = run_dynamics(config, synthetic_dataset(n_train=60)).epochs
    tables = plot_tables(frame, theory_table(frame, config, 60), config)
    plots_dir = tmp_path / paths["dynamics_plots_dir"]
    for name in PLOT_NAMES:
        atomic.write_csv(plots_dir / f"{name}.csv", tables[name])
        assert not any("eta" in column for column in tables[name].columns)  # no param in a name

    plots = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["plots"]
    checked = set()
    for plot in plots:
        if isinstance(plot, str):  # an image directory
            assert INTERPOLATED.fullmatch(plot.split("/")[0]), plot
            continue
        ((plot_id, spec),) = plot.items()
        for file, columns in spec["y"].items():
            assert INTERPOLATED.match(file), f"{plot_id}: {file} is not named through paths"
            path = Path(resolve(file, paths))
            if path.parent != Path(paths["dynamics_plots_dir"]):
                continue
            table = tables[path.stem]
            assert {spec["x"], *columns} <= set(table.columns), (plot_id, file)
            assert table[columns].notna().any().all(), (plot_id, file)  # every curve has data
            checked.add(plot_id)
    assert checked == {"decay_rms", "decay_gradient_ratio", "decay_tail_off", "decay_equilibrium"}

    # and DVC itself finds the data of each of them in the changed copy
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    shown = subprocess.run(
        [*dvc, "plots", "show", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    data = json.loads(shown)["data"]
    for plot_id in checked:
        values = data[plot_id][0]["content"]["data"]["values"]
        fields = {row["field"] for row in values}
        (spec,) = [p[plot_id] for p in plots if isinstance(p, dict) and plot_id in p]
        assert fields == {c for columns in spec["y"].values() for c in columns}, plot_id


def test_curve_names_follow_the_settings_not_their_values():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["dynamics"]
    raw.update(lambdas=[5.0, 0.0, 1.0])
    names = [(c.name, c.eta, c.lam) for c in curves(Dynamics.model_validate(raw))]
    book, sweep = raw["book"], raw["sweep"]
    eta = raw["eta"]
    assert names[:8] == [
        ("question_large", eta, 5.0),
        ("question_default", eta, 5.0),
        ("question2_large", eta, 1.0),
        ("question2_default", eta, 1.0),
        ("control_large", eta, 0.0),
        ("control_default", eta, 0.0),
        ("book_large", book["eta"], 5.0),
        ("book_default", book["eta"], 5.0),
    ]
    assert [n for n, _, _ in names[8:10]] == ["sweep_large", "sweep_default"]
    assert [n for n, _, _ in names[10:]] == [
        f"sweep{k}_{init}"
        for k in range(2, len(sweep["lambdas"]) + 1)
        for init in ("large", "default")
    ]
