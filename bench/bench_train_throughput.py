"""Training samples/s on CPU: the trainer at today's defaults and code vs now, in one run.

"Today" is the loop as it was before this round (commit 129539a): torch's default thread count
(one per core), the explicit softmax attention, a float16 clip table converted per batch, and
the defaults of then (width 128, dropout 0.2). "Now" is `engine.training.loop.Trainer` as it is:
threads from the idle cores (`engine.training.device.pick_threads`), fused attention, a float32
clip table, and the schedule rule's defaults for the train set (sample_data: width 64, no
dropout). Both train the same split with the same cached MiniLM query features, batch 32,
AdamW + schedule + clipping; blocks of steps alternate so that load from other processes hits
both alike. Also printed: the same width (128, dropout 0.2) with today's and with today's code,
so the code's share of the gain is visible apart from the defaults'.

With CUDA: one epoch over 11.3K queries of 256-d features (the official train size, synthetic)
in bf16, time and samples/s.

    .venv/bin/python bench/bench_train_throughput.py [--steps 12] [--data sample_data] [--no-gpu]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.training import model as model_module  # noqa: E402
from engine.training.config import ModelConfig, auto_schedule  # noqa: E402
from engine.training.data import Loader, Split, load_split  # noqa: E402
from engine.training.device import pick_threads  # noqa: E402
from engine.training.model import VSLNet, param_groups  # noqa: E402
from engine.training.text import MiniLMTextEncoder, TextTable  # noqa: E402

GOAL = 2.0
TODAY_THREADS = torch.get_num_threads()  # torch's default, what a run got before


def today_attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MultiHeadAttention.forward as it was: explicit scores, additive mask, softmax, dropout."""
    h = self.drop(self.norm1(x))
    q, k, v = self._heads(self.query(h)), self._heads(self.key(h)), self._heads(self.value(h))
    scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size)
    scores = model_module.mask_logits(scores, mask[:, None, None, :])
    probs = self.drop(torch.softmax(scores, dim=-1))
    attended = (probs @ v).transpose(1, 2).reshape(x.shape)
    residual = self.drop(attended) + x
    return self.drop(self.out(self.drop(self.norm2(residual)))) + residual


NOW_ATTENTION = model_module.MultiHeadAttention.forward


def synthetic_split(n_queries: int, n_clips: int, dim: int = 256, positions: int = 128, seed: int = 0) -> Split:
    """A Split of random clips (all max_pos_len long, as pooled Ego4D clips are) and queries."""
    rng = np.random.default_rng(seed)
    words = "where did i put the cup knife bag phone what how many eggs in on fridge table drawer sink".split()
    queries = [" ".join(rng.choice(words, rng.integers(5, 11))) + "?" for _ in range(n_queries)]
    start = rng.integers(0, positions - 8, n_queries)
    end = start + rng.integers(0, 8, n_queries)
    return Split(
        path="<synthetic>",
        max_pos_len=positions,
        video=torch.from_numpy(rng.standard_normal((n_clips, positions, dim), dtype=np.float32)).half(),
        video_len=torch.full((n_clips,), positions, dtype=torch.long),
        clip_uids=[f"c{i}" for i in range(n_clips)],
        queries=queries,
        clip_row=rng.integers(0, n_clips, n_queries),
        query_row=np.arange(n_queries),
        start=start,
        end=end,
        num_positions=np.full(n_queries, positions),
        duration=np.full(n_queries, 480.0),
        gt_start=start * 3.75,
        gt_end=(end + 1) * 3.75,
        query_idx=np.zeros(n_queries, dtype=np.int64),
        clip_uid=[f"c{i}" for i in range(n_queries)],
        annotation_uid=["a"] * n_queries,
    )


class Runner:
    """One training loop (model, AdamW, schedule, clipping) over a split's cached features."""

    def __init__(
        self, name: str, split: Split, table: TextTable, *, dim: int, drop: float, today: bool, threads: int = 0
    ) -> None:
        self.name, self.today = name, today
        self.loader = Loader(split, table, batch_size=32, shuffle=True, seed=0)
        if not today:
            self.loader.to("cpu")  # the trainer's loader: float32 clip table on a CPU
        torch.manual_seed(0)
        self.model = VSLNet(
            ModelConfig(dim=dim, drop_rate=drop, video_dim=split.video_dim, text_dim=table.features.shape[2])
        )
        groups = param_groups(self.model, 0.01)
        self.params = [p for g in groups for p in g["params"]]
        self.opt = torch.optim.AdamW(groups, lr=1e-4, eps=1e-8 if today else 1e-6)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: max(0.0, 1.0 - s / 10_000))
        self.model.train()
        self.threads = threads or (TODAY_THREADS if today else pick_threads(0))
        self._it = self._forever()

    def _forever(self):
        epoch = 0
        while True:
            yield from self.loader.batches(epoch)
            epoch += 1

    def step(self) -> int:
        torch.set_num_threads(self.threads)
        model_module.MultiHeadAttention.forward = today_attention if self.today else NOW_ATTENTION
        b = next(self._it)
        out = self.model(b.video, b.video_mask, b.query, b.query_mask)
        loss, parts = self.model.compute_loss(out, b)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()
        if self.today:  # one host sync per value, as the loop did
            float(loss.detach())
            {k: float(v) for k, v in parts.items()}
        else:
            torch.stack([loss.detach(), *parts.values()]).tolist()
        return len(b)


def measure(runners: list[Runner], steps: int, block: int = 2, warmup: int = 2) -> dict[str, float]:
    for r in runners:
        for _ in range(warmup):
            r.step()
    done = {r.name: 0 for r in runners}
    spent = {r.name: 0.0 for r in runners}
    while min(done.values()) < steps * 32:
        for r in runners:  # alternate blocks: machine load hits every loop alike
            t0 = time.perf_counter()
            for _ in range(block):
                done[r.name] += r.step()
            spent[r.name] += time.perf_counter() - t0
    model_module.MultiHeadAttention.forward = NOW_ATTENTION
    return {k: done[k] / spent[k] for k in done}


def epoch_figure(device: str = "cuda", n_queries: int = 11_300, n_clips: int = 1_300) -> str:
    """One timed epoch (after a warm-up epoch) over synthetic 256-d clips, bf16 autocast, batch 32."""
    dev = torch.device(device)
    split = synthetic_split(n_queries, n_clips)
    enc = MiniLMTextEncoder(device=device)
    t0 = time.perf_counter()
    table = TextTable.build(enc, split.queries)
    encode_s = time.perf_counter() - t0
    loader = Loader(split, table, batch_size=32, shuffle=True, seed=0).to(dev)
    rule = auto_schedule(n_queries)
    torch.manual_seed(0)
    model = VSLNet(ModelConfig(dim=rule["dim"], drop_rate=rule["drop_rate"], video_dim=256)).to(dev).train()
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=rule["lr"], eps=1e-6)

    def epoch(e):
        for b in loader.batches(e):
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                out = model(b.video, b.video_mask, b.query, b.query_mask)
            loss, _ = model.compute_loss(out, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    epoch(0)  # warm-up epoch: kernels, allocator
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    epoch(1)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return (
        f"GPU ({torch.cuda.get_device_name(dev)}): one epoch over {n_queries} queries of 256-d features, bf16, "
        f"batch 32, width {rule['dim']}: {dt:.2f} s, {n_queries / dt:,.0f} samples/s "
        f"(MiniLM features of {n_queries} queries, once: {encode_s:.1f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="measured steps per loop")
    ap.add_argument("--data", default="sample_data")
    ap.add_argument("--no-gpu", action="store_true")
    args = ap.parse_args()

    train_file = Path(args.data) / "v1" / "annotations" / "nlq_train.json"
    if train_file.is_file():
        split = load_split(train_file, Path(args.data) / "v1" / "egovlp_fp16", max_pos_len=128)
        source = split.summary()
    else:
        split = synthetic_split(512, 64)
        source = "synthetic: 512 queries, 64 clips of 128 x 256"
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    table = TextTable.build(MiniLMTextEncoder(), split.queries)
    rule = auto_schedule(len(split))
    print(f"data: {source}")
    print(f"MiniLM features of {len(split.queries)} distinct queries, once: {time.perf_counter() - t0:.2f} s")
    print(f"threads: today {TODAY_THREADS} (torch default), now {pick_threads(0)} (idle cores)")
    print(f"defaults: today width 128 dropout 0.2; now (schedule rule, n={len(split)}) width {rule['dim']}"
          f" dropout {rule['drop_rate']}")  # fmt: skip
    runners = [
        Runner("today", split, table, dim=128, drop=0.2, today=True),
        Runner("now", split, table, dim=rule["dim"], drop=rule["drop_rate"], today=False),
        Runner("now_128", split, table, dim=128, drop=0.2, today=False),
        Runner("today_1", split, table, dim=128, drop=0.2, today=True, threads=pick_threads(0)),
    ]
    rates = measure(runners, args.steps)
    load1 = os.getloadavg()
    print(f"load average (1 min) before / after: {load0[0]:.2f} / {load1[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"today (defaults and code of then): {rates['today']:.1f} samples/s")
    ratio = rates["now"] / rates["today"]
    print(
        f"now (defaults and code):           {rates['now']:.1f} samples/s -> {ratio:.2f}x today (goal >= {GOAL:.1f}x)"
    )
    print(
        f"now, today's width 128 / dropout 0.2: {rates['now_128']:.1f} samples/s -> "
        f"{rates['now_128'] / rates['today']:.2f}x today (threads and code, same model)"
    )
    print(
        f"today's code and model on now's thread count: {rates['today_1']:.1f} samples/s; now's code on the same "
        f"model and threads: {rates['now_128'] / rates['today_1']:.2f}x (fused attention, float32 table, one sync)"
    )
    if args.no_gpu:
        pass
    elif torch.cuda.is_available():
        print(epoch_figure("cuda"))
    else:
        print("GPU: no GPU (CUDA not available)")


if __name__ == "__main__":
    main()
