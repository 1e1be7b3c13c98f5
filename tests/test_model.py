"""VSLNet / VSLBase: it learns, every parameter trains, losses mask padding, decoding is valid."""

from __future__ import annotations

import json
import types

import pytest
import torch

from engine.errors import ConfigError
from engine.training.config import ModelConfig, TrainConfig
from engine.training.metrics import nlq_metrics
from engine.training.model import VSLNet, decode_spans, highlight_loss, indices_to_seconds, param_groups


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors gain nothing from threads, and on a shared 2-core box a second OpenMP thread
    # spin-waiting for a busy core makes each op many times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(dim=16, num_heads=2, max_pos_len=24, video_dim=8, text_dim=6, drop_rate=0.0)


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{**TINY, **kw})


def synthetic_batch(n=16, length=24, seed=0):
    """Clips whose answer rows carry a marker feature; which marker the query names picks the answer."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(n, length, 8, generator=g) * 0.3
    query = torch.randn(n, 5, 6, generator=g) * 0.3
    lens = torch.randint(12, length + 1, (n,), generator=g)
    lens[0] = length
    start = torch.zeros(n, dtype=torch.long)
    end = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        cue = i % 2  # the query asks for marker 0 or marker 1; both markers appear in every clip
        query[i, :, cue] += 2.0
        a = int(torch.randint(0, int(lens[i]) - 4, (1,), generator=g))
        b = a + int(torch.randint(1, 4, (1,), generator=g))
        other = (a + 8) % (int(lens[i]) - 3)
        video[i, a : b + 1, cue] += 2.0
        video[i, other : other + 2, 1 - cue] += 2.0
        start[i], end[i] = a, b
    positions = torch.arange(length)[None, :]
    mask = (positions < lens[:, None]).float()
    video = video * mask[:, :, None]
    highlight = ((positions >= start[:, None]) & (positions <= end[:, None])).float()
    return types.SimpleNamespace(
        video=video,
        video_mask=mask,
        query=query,
        query_mask=torch.ones(n, 5),
        start=start,
        end=end,
        highlight=highlight,
        video_len=lens,
        duration=lens.double(),  # one second per position
    )


def recall_at_1(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        out = model(batch.video, batch.video_mask, batch.query, batch.query_mask)
        secs = indices_to_seconds(model.predict(out, batch.video_mask), batch.video_len, batch.duration)
    model.train()
    gt = torch.stack([batch.start.double(), batch.end.double() + 1.0], dim=1)
    return nlq_metrics(secs.numpy(), gt.numpy())["R1@0.3"]


@pytest.mark.parametrize("kind", ["vslnet", "vslbase"])
def test_model_learns_to_follow_the_query_on_synthetic_clips(kind):
    torch.manual_seed(0)
    model = VSLNet(tiny(model=kind))
    held_out = synthetic_batch(n=32, seed=999)
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=3e-3)
    r1_before = recall_at_1(model, held_out)
    losses = []
    for step in range(60):
        batch = synthetic_batch(n=16, seed=step)
        loss, parts = model.compute_loss(model(batch.video, batch.video_mask, batch.query, batch.query_mask), batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.3 * first, (first, last)
    r1_after = recall_at_1(model, held_out)
    assert r1_after >= 80.0 and r1_after >= r1_before + 40.0, (r1_before, r1_after)


@pytest.mark.parametrize("kind,predictor", [("vslnet", "rnn"), ("vslnet", "transformer"), ("vslbase", "rnn")])
def test_gradients_reach_every_parameter(kind, predictor):
    torch.manual_seed(1)
    model = VSLNet(tiny(model=kind, predictor=predictor, drop_rate=0.2))
    batch = synthetic_batch(n=4)
    loss, _ = model.compute_loss(model(batch.video, batch.video_mask, batch.query, batch.query_mask), batch)
    loss.backward()
    # The start/end heads' last biases shift every position's logit equally: softmax cross-entropy
    # is invariant to that, so their gradient is zero up to rounding (in the reference too).
    shift_invariant = {"predictor.start_head.2.bias", "predictor.end_head.2.bias"}
    dead = [
        n
        for n, p in model.named_parameters()
        if n not in shift_invariant and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert dead == []
    assert all(model.get_parameter(n).grad is not None for n in shift_invariant)
    # the query-conditioned concatenation feeds the predictor (it is not computed and dropped)
    assert model.cq_concat.linear.weight.grad.abs().sum() > 0
    assert model.cq_concat.pool_weight.grad.abs().sum() > 0


def test_concatenation_output_changes_the_prediction():
    torch.manual_seed(2)
    model = VSLNet(tiny()).eval()
    b = synthetic_batch(n=3)
    before = model(b.video, b.video_mask, b.query, b.query_mask).start_logits
    with torch.no_grad():
        model.cq_concat.linear.weight.mul_(-1.0)
    after = model(b.video, b.video_mask, b.query, b.query_mask).start_logits
    assert not torch.allclose(before, after)


def test_vslbase_has_no_highlighting():
    model = VSLNet(tiny(model="vslbase"))
    b = synthetic_batch(n=2)
    out = model(b.video, b.video_mask, b.query, b.query_mask)
    assert out.highlight_logits is None and model.highlight is None
    _, parts = model.compute_loss(out, b)
    assert float(parts["loss_highlight"]) == 0.0
    assert not any(n.startswith("highlight") for n, _ in model.named_parameters())


def test_highlight_loss_ignores_padding():
    torch.manual_seed(3)
    logits = torch.randn(2, 6)
    labels = torch.tensor([[0, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.float)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.float)
    base = highlight_loss(logits, labels, mask)
    garbage_logits = logits.clone()
    garbage_logits[mask == 0] = torch.tensor([50.0, -50.0, 7.0, 3.0, -2.0])
    garbage_labels = labels.clone()
    garbage_labels[mask == 0] = 1.0
    assert torch.allclose(highlight_loss(garbage_logits, garbage_labels, mask), base)
    # the reference's definition: weight 2 on positives, 1 on negatives, mean over real positions
    p = torch.sigmoid(logits)
    bce = -(labels * p.log() + (1 - labels) * (1 - p).log())
    expected = (bce * (1 + labels) * mask).sum() / mask.sum()
    assert torch.allclose(base, expected, atol=1e-6)


def test_model_outputs_mask_padding_and_loss_is_finite_under_bf16_autocast():
    model = VSLNet(tiny())
    b = synthetic_batch(n=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(b.video, b.video_mask, b.query, b.query_mask)
        loss, _ = model.compute_loss(out, b)
    assert torch.isfinite(loss)
    assert (out.start_logits.float()[b.video_mask == 0] < -1e29).all()


def test_decoding_returns_start_before_end_inside_the_mask():
    g = torch.Generator().manual_seed(4)
    n = 9
    lengths = torch.tensor([1, 2, 3, 9, 5, 7])
    mask = (torch.arange(n)[None, :] < lengths[:, None]).float()
    for _ in range(20):
        start = torch.randn(len(lengths), n, generator=g) * 3
        end = torch.randn(len(lengths), n, generator=g) * 3
        start = start + (1 - mask) * -1e30
        end = end + (1 - mask) * -1e30
        idx = decode_spans(start, end, mask, topk=5)
        assert idx.shape == (len(lengths), 5, 2) and idx.dtype == torch.long
        assert (idx[..., 0] <= idx[..., 1]).all()
        assert (idx >= 0).all() and (idx < lengths[:, None, None]).all()


def test_decoding_matches_the_reference_extract_index_on_full_clips():
    g = torch.Generator().manual_seed(5)
    start, end = torch.randn(4, 12, generator=g), torch.randn(4, 12, generator=g)
    # the reference: outer product of softmaxes, upper triangle, top 5 of the flattened matrix
    outer = torch.triu(torch.softmax(start, 1).unsqueeze(2) @ torch.softmax(end, 1).unsqueeze(1))
    flat = outer.view(4, -1).topk(5, dim=-1).indices
    ours = decode_spans(start, end, torch.ones(4, 12), topk=5)
    assert torch.equal(ours[..., 0], flat // 12) and torch.equal(ours[..., 1], flat % 12)


def test_indices_to_seconds_is_the_reference_index_to_time():
    idx = torch.tensor([[[0, 0], [3, 7]], [[2, 2], [0, 4]]])
    n = torch.tensor([8, 5])
    d = torch.tensor([16.0, 2.5], dtype=torch.float64)
    secs = indices_to_seconds(idx, n, d)
    # index_to_time: start = s * d / n, end = (e + 1) * d / n
    assert secs[0].tolist() == [[0.0, 2.0], [6.0, 16.0]]
    assert torch.allclose(secs[1], torch.tensor([[1.0, 1.5], [0.0, 2.5]], dtype=torch.float64))


def test_param_groups_skip_weight_decay_on_biases_and_layer_norms():
    model = VSLNet(tiny())
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(not names[id(p)].endswith("bias") for p in decay["params"])
    assert any("norm" in names[id(p)] for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_train_config_round_trips_through_json_and_rejects_unknown_keys():
    cfg = TrainConfig(stage="pretrain", epochs=3, naq_jitter=True, model=ModelConfig(model="vslbase", text_dim=768))
    back = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and isinstance(back.model, ModelConfig)
    with pytest.raises(ConfigError, match="model.dimm"):
        TrainConfig.from_dict({**cfg.to_dict(), "model": {"dimm": 3}})
    with pytest.raises(ConfigError, match="stage"):
        TrainConfig(stage="pretrian").validate()
    with pytest.raises(ConfigError, match="num_heads"):
        VSLNet(ModelConfig(dim=30, num_heads=8))


def test_reference_defaults():
    m, t = ModelConfig(), TrainConfig()
    assert (m.dim, m.num_heads, m.drop_rate, m.max_pos_len, m.highlight_lambda, m.extend, m.predictor) == (
        128,
        8,
        0.2,
        128,
        5.0,
        0.1,
        "rnn",
    )
    assert (t.batch_size, t.lr, t.weight_decay, t.clip_norm, t.warmup_proportion) == (32, 1e-4, 0.01, 1.0, 0.0)
