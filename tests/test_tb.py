import json
import logging
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from training_fixtures import make_glove, make_sample, one_torch_thread, tiny_config  # noqa: F401 (one_torch_thread: autouse)

from engine.runs import create_run
from engine.training.loop import Trainer
from engine.training.tb import EventWriter, crc32c, masked_crc
from engine.workspace import Workspace

LOG = logging.getLogger("test.tb")
REPO = Path(__file__).resolve().parents[1]


def read_records(path: Path) -> list[bytes]:
    """TFRecord framing read back by hand: length, its masked CRC, data, its masked CRC."""
    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack_from("<Q", data, i)
        assert struct.unpack_from("<I", data, i + 8)[0] == masked_crc(data[i : i + 8])
        body = data[i + 12 : i + 12 + n]
        assert struct.unpack_from("<I", data, i + 12 + n)[0] == masked_crc(body)
        out.append(body)
        i += 16 + n
    return out


def accumulator(folder: Path):
    ea_mod = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason="tensorboard is not installed (extra [tb])"
    )
    ea = ea_mod.EventAccumulator(str(folder))
    ea.Reload()
    return ea


def test_crc32c_and_record_framing_are_the_tfrecord_ones(tmp_path):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    w = EventWriter(tmp_path)
    w.row({"step": 10, "epoch": 0.5, "loss": 2.5, "lr": 1e-3})
    records = read_records(w.path)
    assert len(records) == 2 and b"brain.Event:2" in records[0] and b"train/loss" in records[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("tb")
    root = make_sample(base / "root", videos=6)
    glove = make_glove(root, base / "glove.txt")
    cfg = tiny_config(root, glove, epochs=2, seed=3)
    run = create_run(Workspace(base / "ws"), {"stage": "baseline", "train": cfg.to_dict()})
    assert Trainer(cfg, run=run, log=LOG).fit() == "done"
    return base, run


def test_a_training_run_writes_every_scalar_figure_and_its_hparams(trained):
    _, run = trained
    assert list(run.path.glob("events.out.tfevents.*"))
    ea = accumulator(run.path)
    rows = run.metrics()
    train = [r for r in rows if "split" not in r]
    evals = [r for r in rows if r.get("split") == "val"]
    assert [e.step for e in ea.Scalars("train/loss")] == [r["step"] for r in train]
    assert [e.value for e in ea.Scalars("train/loss")] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    for key in ("R1@0.3", "R5@0.5", "mIoU"):
        assert [e.value for e in ea.Scalars(f"val/{key}")] == pytest.approx([r[key] for r in evals], rel=1e-6)
    assert {"train/lr", "train/samples_per_s", "val/best_R1@0.3"} <= set(ea.Tags()["scalars"])
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["seed"].number_value == 3 and hp["model.dim"].number_value == 16
    assert hp["text_encoder"].string_value == "glove"


def test_runs_export_tb_converts_metrics_jsonl(trained):
    base, run = trained
    out = base / "tb-export"
    cmd = [sys.executable, "-m", "nlq_tui", "runs", "export-tb", "all", str(out)]
    p = subprocess.run(cmd + ["--workspace", str(base / "ws"), "--json"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["exported"] == [str(out / run.id)]
    records = read_records(next((out / run.id).glob("events.out.tfevents.*")))
    assert len(records) > len(run.metrics())
    ea = accumulator(out / run.id)
    evals = [r for r in run.metrics() if r.get("split") == "val"]
    assert [e.value for e in ea.Scalars("val/R1@0.3")] == pytest.approx([r["R1@0.3"] for r in evals], rel=1e-6)
    # exporting again replaces the files instead of doubling the curves
    subprocess.run(cmd + ["--workspace", str(base / "ws")], capture_output=True, text=True, cwd=REPO, check=True)
    assert len(list((out / run.id).glob("events.out.tfevents.*"))) == 1


def test_a_resumed_run_makes_tensorboard_drop_the_steps_it_replays(tmp_path):
    w = EventWriter(tmp_path)
    for step in (10, 20, 30):
        w.row({"step": step, "loss": 3.0 - step / 10})
    EventWriter(tmp_path, purge_step=20).row({"step": 20, "loss": 9.0})
    ea = accumulator(tmp_path)
    assert [(e.step, e.value) for e in ea.Scalars("train/loss")] == [(10, 2.0), (20, 9.0)]
