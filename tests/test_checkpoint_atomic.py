import json

import pytest
import torch

from l2path import atomic
from l2path.model.checkpoint import load_model, save_model
from l2path.model.init import init_stack


def test_checkpoint_round_trip(tmp_path):
    net = init_stack([784, 5, 10], ["default", "large"], [0, 1], torch.float64)
    save_model(net, 1, tmp_path / "m.pt", meta={"lambda": 0.5})
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta == {"lambda": 0.5} and loaded.sizes == [784, 5, 10]
    for a, b in zip(loaded.weights + loaded.biases, net.weights + net.biases):
        assert torch.equal(a[0], b[1])


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
