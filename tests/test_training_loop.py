import json
import logging
import pickle
import re

import pytest
import torch
from training_fixtures import make_glove, make_sample, one_torch_thread, tiny_config  # noqa: F401 (one_torch_thread: autouse)

from engine.errors import ConfigError, DataError
from engine.runs import FIGURE_KEYS, create_run
from engine.training.__main__ import run_training
from engine.training.loop import Trainer, evaluate_run, load_checkpoint
from engine.training.metrics import evaluate_predictions
from engine.workspace import Workspace

LOG = logging.getLogger("test.training")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    root = make_sample(base / "root")
    return root, make_glove(root, base / "glove.txt")


def _run(tmp_path, cfg, name="ws"):
    ws = Workspace(tmp_path / name)
    return create_run(ws, {"stage": cfg.stage, "train": cfg.to_dict()})


def _train(run, cfg, **kw):
    t = Trainer(cfg, run=run, log=LOG)
    state = t.fit(**kw)
    return t, state


def test_stop_and_resume_mid_epoch_ends_with_the_same_weights_as_training_straight(tmp_path, data):
    root, glove = data
    # NaQ jitter and dropout both draw random numbers: resume must replay them exactly
    cfg = tiny_config(root, glove, epochs=2, naq_jitter=True)
    straight_run = _run(tmp_path, cfg, "a")
    straight, state = _train(straight_run, cfg)
    assert state == "done"
    assert straight.steps_per_epoch >= 3

    resumed_run = _run(tmp_path, cfg, "b")
    stop_at = straight.steps_per_epoch + 1  # inside the second epoch
    first = Trainer(cfg, run=resumed_run, log=LOG)
    assert first.fit(should_stop=lambda: first.step >= stop_at) == "stopped"
    assert first.step == stop_at
    second, state = _train(resumed_run, tiny_config(root, glove, epochs=2, naq_jitter=True), resume=True)
    assert state == "done" and second.step == straight.step

    a, b = straight.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows_a = [r for r in straight_run.metrics() if "loss" in r]
    rows_b = [r for r in resumed_run.metrics() if "loss" in r]
    assert rows_a[-1]["loss"] == rows_b[-1]["loss"] and rows_a[-1]["step"] == rows_b[-1]["step"]
    evals_a = [r for r in straight_run.metrics() if "split" in r]
    evals_b = [r for r in resumed_run.metrics() if "split" in r]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "eval_s"} for r in rows]  # noqa: E731
    assert strip(evals_a) == strip(evals_b)


def test_metrics_rows_checkpoints_and_best_follow_the_contract(tmp_path, data):
    root, glove = data
    cfg = tiny_config(root, glove, epochs=2)
    run = _run(tmp_path, cfg)
    trainer, _ = _train(run, cfg)
    rows = run.metrics()
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "split" in r]
    assert train_rows and {"step", "epoch", "loss", "lr", "samples_per_s"} <= train_rows[0].keys()
    assert [r["epoch"] for r in eval_rows] == [1, 2]  # once per epoch
    for r in eval_rows:
        assert r["split"] == "val" and set(FIGURE_KEYS) <= r.keys()
        assert all(0.0 <= r[k] <= 100.0 for k in FIGURE_KEYS)
    best_row = max(eval_rows, key=lambda r: r["R1@0.3"])  # max() keeps the first of equals
    best = load_checkpoint(run.best_path)
    assert best["figures"]["R1@0.3"] == best_row["R1@0.3"] and best["step"] == best_row["step"]
    last = torch.load(run.last_path, weights_only=True)  # nothing but tensors and plain values
    assert last["step"] == trainer.step and {"optimizer", "scheduler", "rng"} <= last.keys()
    preds = json.loads((run.predictions_dir / "val-best.json").read_text())
    assert preds["challenge"] == "ego4d_nlq_challenge" and preds["version"] == "1.0"


def test_evaluate_run_matches_the_official_evaluator_and_writes_test_predictions(tmp_path, data):
    root, glove = data
    cfg = tiny_config(root, glove, epochs=1)
    run = _run(tmp_path, cfg)
    trainer, _ = _train(run, cfg)
    val = evaluate_run(run, split="val")
    official = evaluate_predictions(root / "v1/annotations/nlq_val.json", val["predictions"])
    for k in FIGURE_KEYS:
        assert val["figures"][k] == pytest.approx(official[k], abs=1e-3)
    assert val["figures"]["R1@0.3"] == pytest.approx(trainer.best["R1@0.3"])
    test = evaluate_run(run, split="test")
    assert test["figures"] is None and test["predictions"].endswith("test-best.json")
    results = json.loads(open(test["predictions"]).read())["results"]
    assert results and all(len(r["predicted_times"]) == 5 for r in results)
    assert {"clip_uid", "annotation_uid", "query_idx", "predicted_times"} == results[0].keys()


def test_eval_every_n_steps_adds_evaluations_inside_an_epoch(tmp_path, data):
    root, glove = data
    cfg = tiny_config(root, glove, epochs=1, eval_every_steps=2)
    run = _run(tmp_path, cfg)
    trainer, _ = _train(run, cfg)
    steps = [r["step"] for r in run.metrics() if "split" in r]
    expected = [s for s in range(2, trainer.step, 2)] + [trainer.step]
    assert steps == expected


def test_finetune_from_a_checkpoint_of_another_shape_is_a_config_error(tmp_path, data):
    root, glove = data
    cfg = tiny_config(root, glove, epochs=1)
    run = _run(tmp_path, cfg)
    _train(run, cfg)
    wider = tiny_config(root, glove, epochs=1, stage="finetune", init_from=str(run.best_path), model={"dim": 32})
    with pytest.raises(ConfigError, match="does not fit"):
        Trainer(wider, log=LOG).fit()
    same = tiny_config(root, glove, epochs=1, stage="finetune", init_from=str(run.best_path), lr=5e-5)
    t = Trainer(same, log=LOG)
    t.build()
    for k, v in load_checkpoint(run.best_path)["model"].items():
        assert torch.equal(t.model.state_dict()[k], v)


class _Evil:
    def __reduce__(self):
        return (print, ("this would have run code",))


def test_a_checkpoint_that_would_unpickle_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(DataError, match="evil.pt"):
        load_checkpoint(path)


def test_a_crash_marks_the_run_failed_with_the_error_line_and_logs_the_traceback(tmp_path, data):
    root, glove = data
    bad = tmp_path / "bad.json"
    bad.write_text('{"videos": [')
    cfg = tiny_config(root, glove, epochs=1, train_file=str(bad))
    run = _run(tmp_path, cfg)
    assert run_training(run) == "failed"
    st = run.status()
    assert st["state"] == "failed" and "bad.json" in st["error"] and "JSON" in st["error"]  # the reader's one line
    log = run.log_path.read_text()
    assert "Traceback" in log and "DataError" in log


def _val_with_empty_windows(root, out):
    """The tree's val file with three answers made zero-length (raw) and one empty only on the feature grid."""
    data = json.loads((root / "v1/annotations/nlq_val.json").read_text())
    queries = [q for v in data["videos"] for c in v["clips"] for a in c["annotations"] for q in a["language_queries"]]
    for q in queries[:3]:
        q["clip_end_sec"] = q["clip_start_sec"]
    start = int(queries[3]["clip_start_sec"] * 1.875) / 1.875
    queries[3]["clip_start_sec"], queries[3]["clip_end_sec"] = start + 0.1, start + 0.4  # inside one grid row
    out.write_text(json.dumps(data))
    return out, len(queries)


def test_every_val_query_is_predicted_and_zero_length_answers_count_as_misses(tmp_path, data):
    import reference_nlq_eval

    root, glove = data
    val, total = _val_with_empty_windows(root, tmp_path / "val.json")
    cfg = tiny_config(root, glove, epochs=1, val_file=str(val))
    run = _run(tmp_path, cfg)
    trainer, _ = _train(run, cfg)
    row = next(r for r in run.metrics() if "split" in r)
    assert row["queries"] == row["queries_total"] == total  # "over N of N queries"
    preds = json.loads((run.predictions_dir / "val-best.json").read_text())["results"]
    ground_truth = json.loads(val.read_text())
    official, evaluated, gt_queries = reference_nlq_eval.evaluate(preds, ground_truth)
    assert evaluated == gt_queries == total  # "Evaluated: N / N instances"
    for key in FIGURE_KEYS + ("R3@0.01",):
        assert row[key] == pytest.approx(official[key], abs=1e-4), key
    assert evaluate_predictions(val, run.predictions_dir / "val-best.json")["mIoU"] == pytest.approx(official["mIoU"])
    # each zero-length answer is predicted and scores a miss at every threshold, alone
    empty = [
        p
        for p in preds
        if (q := _query_of(ground_truth, p)) and q["clip_start_sec"] == q["clip_end_sec"]  # noqa: RUF018
    ]
    assert len(empty) == 3
    alone, n, _ = reference_nlq_eval.evaluate(empty, ground_truth)
    assert n == 3 and all(v == 0.0 for v in alone.values())


def _query_of(ground_truth, pred):
    for v in ground_truth["videos"]:
        for c in v["clips"]:
            for a in c["annotations"]:
                if (c["clip_uid"], a["annotation_uid"]) == (pred["clip_uid"], pred["annotation_uid"]):
                    return a["language_queries"][pred["query_idx"]]
    return None


def test_a_run_logs_plain_progress_lines_with_rate_and_eta(tmp_path, data, monkeypatch):
    from engine.training import loop

    root, glove = data
    monkeypatch.setattr(loop, "PROGRESS_EVERY_S", 0.0)  # every step instead of every 10 s
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger("test.training.progress")
    log.setLevel(logging.INFO)
    log.addHandler(Keep())
    cfg = tiny_config(root, glove, epochs=1)
    Trainer(cfg, run=_run(tmp_path, cfg), log=log).fit()
    progress = [line for line in lines if line.startswith("step ")]
    assert progress and all("\r" not in line and "\x1b" not in line for line in progress)
    assert re.fullmatch(r"step \d+/\d+ \(\d+%\), epoch 1/1, loss [\d.]+, [\d.]+ samples/s, ETA \d+m\d\ds", progress[-1])


def test_live_text_mode_runs_the_frozen_encoder_every_training_step(tmp_path, data, monkeypatch):
    from transformers import BertConfig, BertModel, BertTokenizer

    from engine.training import text as text_module

    root, glove = data
    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where", "the", "?"]))
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64)).save_pretrained(folder)  # fmt: skip
    real = text_module._TransformerTextEncoder.encode_live
    modes: list[bool] = []

    def counting(self, texts, device=None):
        if not modes:
            self.model.register_forward_hook(lambda module, args, out: modes.append(module.training))
        return real(self, texts, device)

    monkeypatch.setattr(text_module._TransformerTextEncoder, "encode_live", counting)
    cfg = tiny_config(root, glove, epochs=1, text_encoder="bert", text_path=str(folder), text_mode="live")
    trainer = Trainer(cfg, run=_run(tmp_path, cfg), log=LOG)
    assert trainer.fit() == "done"
    assert next(trainer.loaders["train"].batches(0)).query is None  # features made per step, not cached
    assert next(trainer.loaders["val"].batches(0)).query is not None  # evaluation: eval-mode features, cached
    assert modes.count(True) >= trainer.steps_per_epoch  # every training step, in train mode (dropout on)
    assert not any(p.requires_grad for p in trainer.text.model.parameters())
