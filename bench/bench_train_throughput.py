"""Training samples/s of VSLNet at the reference config: our loop vs a straightforward one.

Ours: each distinct query encoded ONCE by the frozen MiniLM (a TextTable), clips pre-padded
into one tensor, batches made by index gathers (`engine.training.data.Loader`).
Straightforward (what the Ego4D reference does): every step tokenises the batch's queries and
runs MiniLM on them, pads the clips from a Python list of numpy arrays and builds the highlight
labels in a Python loop.

Both run the same model (dim 128, 8 heads, dropout 0.2, max_pos_len 128, LSTM predictor),
batch 32, AdamW + linear schedule + clipping, same steps, in alternating blocks so that load
from other processes on the machine hits both alike. Data: sample_data/ train when it exists,
else synthetic clips. With CUDA: one epoch over 11.3K queries of 256-d features (the official
train size, synthetic) in bf16, time and samples/s.

    .venv/bin/python bench/bench_train_throughput.py [--steps 8] [--threads 1] [--data sample_data] [--cpu-bf16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.training.config import ModelConfig  # noqa: E402
from engine.training.data import Loader, Split, load_split  # noqa: E402
from engine.training.model import VSLNet, param_groups  # noqa: E402
from engine.training.text import MiniLMTextEncoder, TextTable  # noqa: E402


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


def make_model(video_dim: int, text_dim: int = 384, seed: int = 0):
    torch.manual_seed(seed)
    model = VSLNet(ModelConfig(video_dim=video_dim, text_dim=text_dim))
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / 10_000))
    return model, opt, sched


def train_step(model, opt, sched, video, video_mask, query, query_mask, batch) -> float:
    out = model(video, video_mask, query, query_mask)
    loss, _ = model.compute_loss(out, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return loss.item()


class Ours:
    def __init__(self, split: Split, encoder, batch_size: int) -> None:
        t0 = time.perf_counter()
        self.table = TextTable.build(encoder, split.queries)
        self.encode_s = time.perf_counter() - t0
        self.loader = Loader(split, self.table, batch_size=batch_size, shuffle=True, seed=0)
        self.model, self.opt, self.sched = make_model(split.video_dim)
        self.model.train()
        self._it = self._forever()

    def _forever(self):
        epoch = 0
        while True:
            yield from self.loader.batches(epoch)
            epoch += 1

    def step(self) -> int:
        b = next(self._it)
        train_step(self.model, self.opt, self.sched, b.video, b.video_mask, b.query, b.query_mask, b)
        return len(b)


class OursBf16(Ours):
    """Ours under CPU bf16 autocast (for CPUs with bf16 instructions; the run config uses bf16 on GPUs only)."""

    def step(self) -> int:
        b = next(self._it)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model(b.video, b.video_mask, b.query, b.query_mask)
        loss, _ = self.model.compute_loss(out, b)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        return len(b)


class Straightforward:
    """The reference's way: Python records, numpy clip features, text encoder every step."""

    def __init__(self, split: Split, encoder, batch_size: int, extend: float = 0.1, text_model=None) -> None:
        self.tok, self.bert = encoder.tokenizer, text_model if text_model is not None else encoder.model
        self.batch_size, self.extend = batch_size, extend
        feats = split.video.float().numpy()
        self.features = {uid: feats[i, : int(split.video_len[i])] for i, uid in enumerate(split.clip_uids)}
        self.records = [
            {
                "vid": split.clip_uids[split.clip_row[i]],
                "query": split.queries[split.query_row[i]],
                "s_ind": int(split.start[i]),
                "e_ind": int(split.end[i]),
            }
            for i in range(len(split))
        ]
        self.model, self.opt, self.sched = make_model(split.video_dim, int(self.bert.config.hidden_size))
        self.model.train()
        self.bert.train()  # the reference's BERT sits inside the model: train mode, frozen weights
        self.rng = np.random.default_rng(0)
        self.order, self.pos = self.rng.permutation(len(self.records)), 0

    def collate(self, records):
        feats = [self.features[r["vid"]] for r in records]
        max_len = max(f.shape[0] for f in feats)
        padded, lens = [], []
        for f in feats:
            lens.append(f.shape[0])
            extra = max_len - f.shape[0]
            padded.append(np.concatenate([f, np.zeros((extra, f.shape[1]), np.float32)]) if extra else f)
        vfeats = torch.tensor(np.asarray(padded, dtype=np.float32))
        vlens = torch.tensor(lens)
        s = [r["s_ind"] for r in records]
        e = [r["e_ind"] for r in records]
        h = np.zeros((len(records), max_len), dtype=np.int32)
        for i in range(len(records)):
            ext = round(self.extend * float(e[i] - s[i] + 1))
            if ext > 0:
                h[i][max(0, s[i] - ext) : min(e[i] + ext, lens[i] - 1) + 1] = 1
            else:
                h[i][s[i] : e[i] + 1] = 1
        mask = (torch.arange(max_len)[None, :] < vlens[:, None]).float()
        return vfeats, mask, torch.tensor(s), torch.tensor(e), torch.tensor(h, dtype=torch.float32)

    def step(self) -> int:
        if self.pos + self.batch_size > len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.records)), 0
        records = [self.records[i] for i in self.order[self.pos : self.pos + self.batch_size]]
        self.pos += self.batch_size
        video, video_mask, start, end, highlight = self.collate(records)
        enc = self.tok([r["query"] for r in records], padding=True, return_tensors="pt")
        query = self.bert(**enc).last_hidden_state.detach()
        query_mask = enc["attention_mask"].float()

        class B:  # what compute_loss reads
            pass

        b = B()
        b.start, b.end, b.highlight, b.video_mask = start, end, highlight, video_mask
        train_step(self.model, self.opt, self.sched, video, video_mask, query, query_mask, b)
        return len(records)


def measure(runners: dict, steps: int, block: int = 3, warmup: int = 2) -> dict[str, float]:
    for r in runners.values():
        for _ in range(warmup):
            r.step()
    done = {k: 0 for k in runners}
    spent = {k: 0.0 for k in runners}
    while min(done.values()) < steps * 32:
        for name, r in runners.items():  # alternate blocks: machine load hits both alike
            t0 = time.perf_counter()
            for _ in range(block):
                done[name] += r.step()
            spent[name] += time.perf_counter() - t0
    return {k: done[k] / spent[k] for k in runners}


def epoch_figure(device: str = "cuda", n_queries: int = 11_300, n_clips: int = 1_300) -> str:
    """One timed epoch (after a warm-up epoch) over synthetic 256-d clips, bf16 autocast, batch 32."""
    dev = torch.device(device)
    split = synthetic_split(n_queries, n_clips)
    enc = MiniLMTextEncoder(device=device)
    t0 = time.perf_counter()
    table = TextTable.build(enc, split.queries)
    encode_s = time.perf_counter() - t0
    loader = Loader(split, table, batch_size=32, shuffle=True, seed=0).to(dev)
    model, opt, sched = make_model(split.video_dim)
    model.to(dev).train()

    def epoch(e):
        for b in loader.batches(e):
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                out = model(b.video, b.video_mask, b.query, b.query_mask)
            loss, _ = model.compute_loss(out, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    epoch(0)  # warm-up epoch: kernels, allocator
    sync()
    t0 = time.perf_counter()
    epoch(1)
    sync()
    dt = time.perf_counter() - t0
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else device
    return (
        f"GPU ({name}): one epoch over {n_queries} queries of 256-d features, bf16, batch 32: "
        f"{dt:.2f} s, {n_queries / dt:,.0f} samples/s (MiniLM features of {n_queries} queries, once: {encode_s:.1f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="measured steps per loop")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the dev box's 2 cores are shared)")
    ap.add_argument("--data", default="sample_data")
    ap.add_argument("--no-gpu", action="store_true")
    ap.add_argument("--no-bert-base", action="store_true", help="skip the BERT-base straightforward loop")
    ap.add_argument("--cpu-bf16", action="store_true", help="also time ours under CPU bf16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    train_file = Path(args.data) / "v1" / "annotations" / "nlq_train.json"
    if train_file.is_file():
        split = load_split(train_file, Path(args.data) / "v1" / "egovlp_fp16", max_pos_len=128)
        source = split.summary()
    else:
        split = synthetic_split(512, 64)
        source = "synthetic: 512 queries, 64 clips of 128 x 256"
    encoder = MiniLMTextEncoder()
    print(f"data: {source}")
    print(f"CPU threads: {torch.get_num_threads()}; model dim 128, 8 heads, batch 32, LSTM predictor")
    ours = Ours(split, encoder, 32)
    print(f"ours: MiniLM features of {len(split.queries)} distinct queries, once: {ours.encode_s:.2f} s")
    runners = {"ours": ours, "minilm": Straightforward(split, encoder, 32)}
    if not args.no_bert_base:
        from transformers import BertConfig, BertModel

        # The reference's encoder is bert-base-uncased; its `text_agnostic` mode builds exactly this
        # BertModel(BertConfig()) with random weights: the same compute, no download. MiniLM's
        # tokenizer is bert-base-uncased's WordPiece vocabulary.
        torch.manual_seed(0)
        runners["bert_base"] = Straightforward(split, encoder, 32, text_model=BertModel(BertConfig()))
    if args.cpu_bf16:
        runners["ours_bf16"] = OursBf16(split, encoder, 32)
    rates = measure(runners, args.steps)
    print(f"ours (cached frozen text, pre-padded tensors): {rates['ours']:.1f} samples/s")
    print(
        f"straightforward, MiniLM every step, padding from Python lists: {rates['minilm']:.1f} samples/s"
        f" -> ours is {rates['ours'] / rates['minilm']:.2f}x"
    )
    if "bert_base" in rates:
        print(
            f"straightforward, BERT-base (the reference's encoder) every step: {rates['bert_base']:.1f} samples/s"
            f" -> ours is {rates['ours'] / rates['bert_base']:.2f}x"
        )
    if "ours_bf16" in rates:
        print(
            f"ours under CPU bf16 autocast: {rates['ours_bf16']:.1f} samples/s"
            f" ({rates['ours_bf16'] / rates['minilm']:.2f}x the MiniLM loop)"
        )
    if args.no_gpu:
        pass
    elif torch.cuda.is_available():
        print(epoch_figure("cuda"))
    else:
        print("GPU: no GPU (CUDA not available)")


if __name__ == "__main__":
    main()
