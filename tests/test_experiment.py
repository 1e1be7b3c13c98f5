import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from training_fixtures import THREADS_ENV, make_glove, make_sample

from engine.errors import ConfigError
from engine.experiment.plan import experiment_dir, make_plan
from engine.experiment.report import experiment_table, write_report
from engine.experiment.stats import paired_interval, t_ppf
from engine.runs import create_run, list_runs
from engine.workspace import Workspace, atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def test_paired_interval_matches_a_hand_computed_case():
    # gains 1, 2, 4: mean 7/3, sd sqrt(7/3) = 1.527525; t(0.975, 2) = 4.302653 (printed tables)
    # half width = 4.302653 * 1.527525 / sqrt(3) = 3.794583
    p = paired_interval([10.0, 20.0, 30.0], [11.0, 22.0, 34.0])
    assert p["gains"] == [1.0, 2.0, 4.0]
    assert p["mean"] == pytest.approx(7 / 3)
    assert p["sd"] == pytest.approx(1.527525, abs=1e-6)
    assert p["t"] == pytest.approx(4.302653, abs=1e-6)
    assert p["lo"] == pytest.approx(7 / 3 - 3.794583, abs=1e-5)
    assert p["hi"] == pytest.approx(7 / 3 + 3.794583, abs=1e-5)
    assert t_ppf(0.975, 1) == pytest.approx(12.706205, abs=1e-6)
    assert t_ppf(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_ppf(0.025, 9) == pytest.approx(-2.262157, abs=1e-6)
    one = paired_interval([5.0], [6.0])
    assert one["mean"] == 1.0 and one["lo"] is None and one["hi"] is None


def _finished_run(ws, stage, seed, r1, exp_job):
    """A run folder as a finished training process leaves it: config, status with best, metrics."""
    run = create_run(ws, {"stage": stage, "train": {"seed": seed}})
    best = {"R1@0.3": r1, "R1@0.5": r1 / 2, "R5@0.3": r1 * 2, "R5@0.5": r1, "mIoU": r1 / 3, "step": 20}
    now = time.time()
    atomic_write_json(run.status_path, {"state": "done", "started": now - 5, "ended": now, "best": best})
    for step, loss in ((10, 3.0), (20, 2.0)):
        run.append_metrics({"step": step, "epoch": step / 20, "loss": loss + seed / 10, "lr": 1e-3})
        run.append_metrics(
            {
                "split": "val",
                "step": step,
                "epoch": step // 20,
                **{k: v * step / 20 for k, v in best.items() if k != "step"},
                "queries": 40,
                "queries_total": 40,
            }
        )
    return run


def test_report_tables_gain_interval_and_csv_from_finished_runs(tmp_path):
    root = make_sample(tmp_path / "root", videos=4)
    aug = tmp_path / "aug.json"
    aug.write_bytes((root / "v1" / "annotations" / "nlq_train.json").read_bytes())
    manifest = {
        "exported": 3,
        "variant": "tmpl-p1",
        "counts_by_status": {"accepted": 3, "edited": 1, "rejected": 4},
        "queries": [{"backend": "template", "model": "rule", "prompt_version": 1}] * 3,
    }
    Path(str(aug) + ".manifest.json").write_text(json.dumps(manifest))
    ws = Workspace(tmp_path / "ws")
    plan = make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1, 2, 3], settings={"epochs": 2})
    base = {1: 10.0, 2: 12.0, 3: 11.0}
    fine = {1: 15.0, 2: 16.0, 3: 17.0}
    jobs = {}
    for seed in (1, 2, 3):
        jobs[f"baseline/s{seed}"] = {"run_id": _finished_run(ws, "baseline", seed, base[seed], None).id}
        jobs[f"pretrain/aug/s{seed}"] = {"run_id": _finished_run(ws, "pretrain", seed, 5.0, None).id}
        jobs[f"finetune/aug/s{seed}"] = {"run_id": _finished_run(ws, "finetune", seed, fine[seed], None).id}
    atomic_write_json(experiment_dir(ws, plan.id) / "state.json", {"jobs": jobs})

    out = write_report(ws, plan)

    g = out["gain"]["finetune:aug"]["R1@0.3"]
    expected = paired_interval([10.0, 12.0, 11.0], [15.0, 16.0, 17.0])
    assert g["gains"] == [5.0, 4.0, 6.0] and g["mean"] == pytest.approx(5.0)
    assert (g["lo"], g["hi"]) == (pytest.approx(expected["lo"]), pytest.approx(expected["hi"]))
    assert g["lo"] > 0  # 5 ± 4.303 * 1 / sqrt(3)
    assert out["arms"]["baseline"]["R1@0.3"] == pytest.approx(11.0)
    report = Path(out["report"]).read_text()
    assert "| baseline | 3 | 11.00 ± 1.00 |" in report
    assert "on val over 40 of 40 queries" in report
    assert f"[{expected['lo']:+.2f}, {expected['hi']:+.2f}]" in report
    assert "| aug | tmpl-p1 | template | rule | 1 | 50.0% of 8 | 3 |" in report
    assert plan.sources[0].sha256 in report
    rows = list(csv.DictReader(Path(out["results"]).open()))
    assert len(rows) == 9 and {r["state"] for r in rows} == {"done"}
    assert [float(r["R1@0.3"]) for r in rows if r["arm"] == "finetune:aug"] == [15.0, 16.0, 17.0]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out["plots"] == []
    else:
        assert {Path(p).name for p in out["plots"]} == {"val_r1.png", "train_loss.png"}
        assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out["plots"])


def test_plan_is_found_again_and_refuses_other_settings_under_the_same_id(tmp_path):
    root = make_sample(tmp_path / "root", videos=4)
    aug = tmp_path / "aug.json"
    aug.write_text("{}")
    ws = Workspace(tmp_path / "ws")
    a = make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1, 2], settings={"epochs": 3})
    b = make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1, 2, 3], settings={"epochs": 3})
    assert a.id == b.id and b.seeds == [1, 2, 3]
    assert [j.key for j in b.jobs()][:3] == ["baseline/s1", "pretrain/aug/s1", "finetune/aug/s1"]
    with pytest.raises(ConfigError, match="other settings"):
        make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1], settings={"epochs": 4}, exp_id=a.id)
    with pytest.raises(ConfigError, match="neither a file nor a variant"):
        make_plan(ws, data_root=root, pretrain=["no-such-variant"], seeds=[1])
    assert [p.name for p in (ws.path / "experiments").iterdir()] == [a.id]  # the refused plan left nothing
    with pytest.raises(ConfigError, match="distinct seeds"):
        make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1, 1])


@pytest.mark.slow
def test_a_small_experiment_runs_detached_runs_writes_its_report_and_reuses_them(tmp_path):
    root = make_sample(tmp_path / "root", videos=8)
    glove = make_glove(root, tmp_path / "glove.txt")
    aug = tmp_path / "aug.json"
    aug.write_bytes((root / "v1" / "annotations" / "nlq_train.json").read_bytes())
    ws = tmp_path / "ws"
    cmd = [sys.executable, "-m", "nlq_tui", "experiment", "--workspace", str(ws), "--data", str(root)]
    cmd += ["--pretrain", str(aug), "--seeds", "1", "2", "--epochs", "1", "--dim", "16", "--batch-size", "8"]
    cmd += ["--device", "cpu", "--text-encoder", "glove", "--text-path", str(glove), "--json"]
    env = {**os.environ, **THREADS_ENV, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["state"] == "done" and out["runs_done"] == out["runs"] == 6
    folder = Path(out["dir"])
    assert (folder / "report.md").is_file() and (folder / "results.csv").is_file()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert (folder / "val_r1.png").is_file()
    runs = list_runs(ws)
    assert len(runs) == 6
    tags = sorted((r.config()["experiment"]["arm"], r.config()["experiment"]["seed"]) for r in runs)
    assert tags == sorted([(a, s) for a in ("baseline", "pretrain:aug", "finetune:aug") for s in (1, 2)])
    fine = [r for r in runs if r.config()["stage"] == "finetune"]
    pre_ids = {r.id for r in runs if r.config()["stage"] == "pretrain"}
    assert all(r.config()["from_run"] in pre_ids for r in fine)
    assert all("provenance" in r.config() for r in runs)

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list_runs(ws)) == 6  # every finished run reused, none started
    plan = make_plan(Workspace(ws), data_root=root, pretrain=[str(aug)], seeds=[1, 2], settings=_settings(glove))
    assert plan.id == out["id"]
    assert {r["state"] for r in experiment_table(Workspace(ws), plan)} == {"done"}


def _settings(glove):
    return {"epochs": 1, "dim": 16, "batch_size": 8, "device": "cpu", "text_encoder": "glove", "text_path": str(glove)}


def test_a_variant_is_exported_once_into_the_experiment_and_cited_with_its_accept_rate(tmp_path):
    from review_fixtures import populate, write_data_root

    from engine.store import CandidateStore

    root = write_data_root(tmp_path / "ego4d", videos=4)
    ws = Workspace(tmp_path / "ws")
    store = CandidateStore(ws, reviewer="ann")
    ids = populate(store, 20, videos=4)
    for cid in ids[:3]:
        store.decide(cid, "accept")
    store.decide(ids[3], "reject", reason="ambiguous")
    name = store.variants()[0].name
    store.close()

    plan = make_plan(ws, data_root=root, pretrain=[name], seeds=[1, 2])
    source = plan.sources[0]
    assert source.variant == name and Path(source.file).parent == experiment_dir(ws, plan.id) / "pretrain"
    exported = json.loads(Path(source.file).read_text())
    assert sum(len(c["annotations"]) for v in exported["videos"] for c in v["clips"]) == 3
    # a rerun plans nothing new: same file, same sha256, even after more reviewing
    store = CandidateStore(ws, reviewer="ann")
    store.decide(ids[4], "accept")
    store.close()
    again = make_plan(ws, data_root=root, pretrain=[name], seeds=[1, 2])
    assert again.sources[0].sha256 == source.sha256
    report = Path(write_report(ws, again)["report"]).read_text()
    assert f"| {source.label} | {name} |" in report
    assert "80.0% of 5" in report  # the variant's accept rate now: 4 accepted of 5 reviewed


@pytest.mark.slow
def test_a_stopped_experiment_resumes_its_runs_from_last_pt_when_rerun(tmp_path, monkeypatch):
    from engine.experiment.runner import Runner

    monkeypatch.setenv("NLQ_TORCH_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = make_sample(tmp_path / "root", videos=8)
    glove = make_glove(root, tmp_path / "glove.txt")
    aug = tmp_path / "aug.json"
    aug.write_bytes((root / "v1" / "annotations" / "nlq_train.json").read_bytes())
    ws = Workspace(tmp_path / "ws")
    settings = {**_settings(glove), "epochs": 6}
    plan = make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1], settings=settings)
    first = Runner(ws, plan, slots=2)

    def training() -> bool:  # both first runs past their first logged step: SIGTERM now saves last.pt
        runs = [first.run_of(k) for k in ("baseline/s1", "pretrain/aug/s1")]
        return all(r is not None and (r.summary().get("step") or 0) >= 10 for r in runs)

    assert first.run(poll=0.2, should_stop=training) == "stopped"
    started = {k: v["run_id"] for k, v in first.state["jobs"].items()}
    stopped = {}
    for key, rid in started.items():
        run = first.run_of(key)
        deadline = time.time() + 60
        while run.status()["state"] == "running" and time.time() < deadline:
            time.sleep(0.2)
        # On a loaded machine one run may reach its last epoch between the poll and the stop.
        assert run.status()["state"] in ("stopped", "done") and run.last_path.exists()
        if run.status()["state"] == "stopped":
            stopped[key] = rid
    assert stopped, "at least one run was stopped mid-training"

    events: list[str] = []
    assert Runner(ws, plan, slots=2, on_event=events.append).run(poll=0.5) == "done"
    assert any("resuming run" in e for e in events)
    again = {k: v["run_id"] for k, v in first.__class__(ws, plan).state["jobs"].items()}
    assert all(again[k] == rid for k, rid in stopped.items())  # the same runs, resumed, not new ones
    assert len(list_runs(ws)) == 3


def test_text_from_outside_goes_into_the_report_as_one_visible_cell():
    from engine.experiment.report import _cell

    cell = _cell("gpt|x\x1b[2J\nnext line")
    assert "\x1b" not in cell and "\n" not in cell and "gpt\\|x" in cell


def test_stage_learning_rates_go_to_their_stages_only(tmp_path):
    from engine.experiment.runner import Runner

    root = make_sample(tmp_path / "root", videos=4)
    aug = tmp_path / "aug.json"
    aug.write_text("{}")
    ws = Workspace(tmp_path / "ws")
    settings = {"lr": 0.006, "pretrain_lr": 0.003, "finetune_lr": 0.0015, "dim": 32}
    plan = make_plan(ws, data_root=root, pretrain=[str(aug)], seeds=[1], settings=settings)
    runner = Runner(ws, plan, slots=1)
    runner.state["jobs"]["pretrain/aug/s1"] = {"run_id": "20261201-000000-pretrain-abcd"}
    by_stage = {j.stage: runner.settings_for(j) for j in plan.jobs()}
    assert by_stage["baseline"]["lr"] == 0.006 and by_stage["baseline"]["dim"] == 32
    assert by_stage["pretrain"]["lr"] == 0.003 and by_stage["pretrain"]["train_file"] == str(aug.resolve())
    fine = by_stage["finetune"]
    assert fine["lr"] == 0.0015 and fine["from_run"] == "20261201-000000-pretrain-abcd" and "dim" not in fine
