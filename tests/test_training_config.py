"""Each training setting declared once: the dataclass fields, their metadata, the flags, the rule."""

from __future__ import annotations

import argparse
import json

import pytest

from engine.errors import ConfigError
from engine.training.config import (
    AUTO_SETTINGS,
    ModelConfig,
    TrainConfig,
    auto_schedule,
    describe_schedule,
    resolve_schedule,
    settings,
    settings_markdown,
)


def test_the_rule_at_the_sample_size_is_the_setting_that_learns_there():
    assert auto_schedule(300) == {"dim": 64, "drop_rate": 0.0, "lr": 6e-3, "epochs": 30, "evals_per_epoch": 2}
    assert auto_schedule(289) == auto_schedule(300)  # below the small end: the same


def test_the_rule_on_the_full_ego4d_train_split_is_the_reference():
    # EGO4D/episodic-memory NLQ/VSLNet: dim 128, dropout 0.2, init_lr 1e-4, README's --epochs 200, eval every half epoch
    ref = {"dim": 128, "drop_rate": 0.2, "lr": 1e-4, "epochs": 200, "evals_per_epoch": 2}
    assert auto_schedule(11_000) == ref
    assert auto_schedule(11_300) == ref  # the official train split has ~11.3K queries


def test_the_rule_moves_one_way_between_the_ends_and_by_stage():
    sizes = [300, 600, 1_500, 3_000, 6_000, 11_000]
    picks = [auto_schedule(n) for n in sizes]
    for a, b in zip(picks, picks[1:]):
        assert b["lr"] <= a["lr"] and b["epochs"] >= a["epochs"] and b["drop_rate"] >= a["drop_rate"]
        assert b["dim"] >= a["dim"]
    assert auto_schedule(1_466, "pretrain")["epochs"] == round(auto_schedule(1_466)["epochs"] / 8)
    assert auto_schedule(300, "pretrain")["epochs"] >= 2
    assert auto_schedule(300, "finetune")["lr"] == pytest.approx(auto_schedule(300)["lr"] / 4)
    assert auto_schedule(1_466, "pretrain")["lr"] > auto_schedule(1_466)["lr"]  # fewer epochs, a larger step
    assert auto_schedule(1_466, "pretrain")["drop_rate"] == 0.0 < auto_schedule(1_466)["drop_rate"]


def test_from_user_leaves_unset_tuning_to_the_rule_and_every_flag_overrides():
    cfg = TrainConfig.from_user({"stage": "baseline", "data_root": "/r", "lr": "2e-3", "dim": None, "epochs": ""})
    assert cfg.lr == 2e-3 and set(cfg.auto) == set(AUTO_SETTINGS) - {"lr"}
    record = resolve_schedule(cfg, 289)
    assert (cfg.model.dim, cfg.model.drop_rate, cfg.epochs, cfg.lr) == (64, 0.0, 30, 2e-3)
    assert record["train_queries"] == 289 and "lr" not in record["chosen"] and cfg.auto == []
    line = describe_schedule(cfg, 10)
    assert "width 64 (rule)" in line and "lr 0.002," in line and "30 epochs (300 steps) (rule)" in line
    assert "2 eval(s) per epoch (rule)" in line
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg  # the resolved config round-trips; nothing is re-picked on resume


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"lr": "0"}, "--lr / the learning rate field: 0.0 must be > 0"),
        ({"dim": "6.5"}, "--dim / the model width field: '6.5' is not a whole number"),
        ({"predictor": "bert"}, "--predictor / the predictor field: 'bert' is not one of rnn, transformer"),
        ({"drop_rate": 1}, "--drop-rate / the drop rate field: 1.0 must be < 1"),
        ({"epochs": "ten"}, "--epochs / the epochs field: 'ten' is not a number"),
        ({"freeze_text": "maybe"}, "--unfreeze-text / the freeze text field"),
        ({"device": "gpu"}, "--device / the device field"),
        ({"lrr": 1}, "unknown training setting 'lrr'"),
        ({"dim": 60, "num_heads": 8}, "multiple of num_heads"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag_and_the_form_field(values, needle):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_user(values)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_finetune_keeps_its_pretrain_runs_shape_and_encoder():
    src = TrainConfig(text_encoder="glove", text_path="/g.txt", batch_size=8, seed=3, model=ModelConfig(dim=64))
    cfg = TrainConfig.from_user({"stage": "finetune", "lr": None}, source=src)
    assert (cfg.text_encoder, cfg.batch_size, cfg.seed, cfg.model.dim) == ("glove", 8, 3, 64)
    assert "dim" not in cfg.auto and {"lr", "epochs", "drop_rate"} <= set(cfg.auto)
    with pytest.raises(ConfigError, match="--dim / the model width field: a finetune keeps"):
        TrainConfig.from_user({"stage": "finetune", "dim": 128}, source=src)


def test_a_config_json_of_an_older_run_still_loads():
    old = TrainConfig().to_dict()
    old.pop("drop_empty_windows")
    old["keep_empty_windows"] = False  # the old default dropped them
    old["num_workers"] = 0
    assert TrainConfig.from_dict(old).drop_empty_windows is True


def test_every_setting_has_help_a_unique_flag_and_is_a_train_flag_and_a_docs_row():
    from nlq_tui.commands.train import register

    infos = settings()
    assert all(i.setting.help and "\n" not in i.setting.help for i in infos)
    flags = [i.flag for i in infos]
    assert len(flags) == len(set(flags))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    train = parser._subparsers._group_actions[0].choices["train"]
    generated = {opt for a in train._actions for opt in a.option_strings}
    assert set(flags) <= generated
    doc = settings_markdown()
    assert all(f"`{f}`" in doc for f in flags) and "Schedule rule" in doc
    args = train.parse_args(["--lr", "1e-3", "--unfreeze-text", "--predictor", "transformer", "--no-bf16"])
    values = {name: getattr(args, name) for name in args.setting_names}
    cfg = TrainConfig.from_user(values)
    assert (cfg.lr, cfg.freeze_text, cfg.model.predictor, cfg.bf16) == (1e-3, False, "transformer", False)


def test_devices_and_threads_are_checked_and_picked():
    import os

    from engine.training.device import pick_threads, resolve_device

    TrainConfig(device="cuda:1").validate()  # the form cuda:N is a setting
    with pytest.raises(ConfigError, match="--device / the device field"):
        TrainConfig(device="cuda:x").validate()
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda:1: no CUDA GPU"):
            resolve_device("cuda:1")
    else:
        with pytest.raises(ConfigError, match="GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    old = os.environ.pop("NLQ_TORCH_THREADS", None)
    try:
        assert pick_threads(3) == 3
        assert 1 <= pick_threads(0) <= (os.cpu_count() or 1)  # the idle cores, at least one
        os.environ["NLQ_TORCH_THREADS"] = "2"
        assert pick_threads(5) == 2  # the environment (tests, the experiment) wins
    finally:
        os.environ.pop("NLQ_TORCH_THREADS", None)
        if old is not None:
            os.environ["NLQ_TORCH_THREADS"] = old
