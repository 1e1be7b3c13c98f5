import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch
from training_fixtures import make_glove, make_sample, one_torch_thread, tiny_config  # noqa: F401 (one_torch_thread: autouse)

from engine.runs import create_run
from engine.training.loop import Trainer
from engine.training.provenance import export_record, git_state, manifest_head
from engine.workspace import Workspace

LOG = logging.getLogger("test.provenance")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("prov")
    root = make_sample(base / "root", videos=6)
    return root, make_glove(root, base / "glove.txt")


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_trained_run_records_files_versions_device_seed_and_resolved_config(tmp_path, data):
    root, glove = data
    # an "export": an NLQ file with a manifest beside it, as `nlq-tui export` writes them
    train_file = tmp_path / "aug.json"
    train_file.write_bytes((root / "v1" / "annotations" / "nlq_train.json").read_bytes())
    manifest = {"file": train_file.name, "sha256": sha(train_file), "exported": 12, "variant": "tmpl-v1"}
    Path(str(train_file) + ".manifest.json").write_text(json.dumps(manifest))
    cfg = tiny_config(root, glove, epochs=1, seed=11, stage="pretrain", train_file=str(train_file))
    run = create_run(Workspace(tmp_path / "ws"), {"stage": "pretrain", "train": cfg.to_dict()})

    assert Trainer(cfg, run=run, log=LOG).fit() == "done"

    prov = json.loads(run.config_path.read_text())["provenance"]
    val = root / "v1" / "annotations" / "nlq_val.json"
    assert prov["files"]["train"] == {
        "path": str(train_file.resolve()),
        "bytes": train_file.stat().st_size,
        "sha256": sha(train_file),
    }
    assert prov["files"]["val"]["sha256"] == sha(val)
    assert prov["export"]["variant"] == "tmpl-v1"
    assert prov["export"]["file_sha256"] == sha(train_file)
    assert prov["export"]["manifest_sha256"] == sha(Path(str(train_file) + ".manifest.json"))
    assert prov["packages"]["torch"] == torch.__version__
    assert prov["packages"]["transformers"]
    assert prov["project"]["version"]
    assert prov["project"].get("git_commit") == git_state().get("git_commit")
    assert prov["device"] == "cpu"
    assert prov["seed"] == 11
    # resolved: the widths the loader and the text encoder set, not the dataclass defaults
    assert prov["config"]["model"]["text_dim"] == 16
    assert prov["config"]["model"]["video_dim"] == 256
    assert prov["config"]["train_file"] == str(train_file)


def test_resume_keeps_the_first_provenance_and_notes_a_changed_file(tmp_path, data):
    root, glove = data
    train_file = tmp_path / "train.json"
    train_file.write_bytes((root / "v1" / "annotations" / "nlq_train.json").read_bytes())
    cfg = tiny_config(root, glove, epochs=2, train_file=str(train_file))
    run = create_run(Workspace(tmp_path / "ws"), {"stage": "baseline", "train": cfg.to_dict()})
    first = Trainer(cfg, run=run, log=LOG)
    assert first.fit(should_stop=lambda: first.step >= 2) == "stopped"
    before = json.loads(run.config_path.read_text())["provenance"]

    doc = json.loads(train_file.read_text())
    doc["description"] = "edited after the run started"
    train_file.write_text(json.dumps(doc))
    cfg2 = tiny_config(root, glove, epochs=2, train_file=str(train_file))
    assert Trainer(cfg2, run=run, log=LOG).fit(resume=True) == "done"

    after = json.loads(run.config_path.read_text())["provenance"]
    assert after["files"]["train"]["sha256"] == before["files"]["train"]["sha256"] != sha(train_file)
    assert [r["changed_files"] for r in after["resumes"]] == [["train"]]


def test_no_manifest_beside_the_training_file_means_no_export_record(tmp_path):
    f = tmp_path / "plain.json"
    f.write_text("{}")
    assert export_record(f) is None


def test_a_large_manifest_is_read_up_to_its_query_list(tmp_path):
    f = tmp_path / "big.json"
    f.write_text("{}")
    queries = [{"candidate_id": f"g{i}#1@v", "narration": {"text": "x" * 100}} for i in range(20000)]
    manifest = {"sha256": "ab" * 32, "exported": 20000, "variant": "v", "variants": [{"name": "v", "model": "m"}]}
    text = json.dumps({**manifest, "queries": queries, "card": "after the list"})
    assert len(text) > 2_000_000
    Path(str(f) + ".manifest.json").write_text(text)
    record = export_record(f)
    assert record["variant"] == "v" and record["exported"] == 20000 and record["file_sha256"] == "ab" * 32
    assert record["variants"] == [
        {"name": "v", "backend": None, "model": "m", "prompt_version": None, "exported": None}
    ]
    cut = text.index("20000") + 3  # inside the number: "200" must not be read as the count
    head = manifest_head(Path(str(f) + ".manifest.json"), max_bytes=cut)
    assert head == {"sha256": "ab" * 32}
