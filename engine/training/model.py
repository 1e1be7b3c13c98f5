"""VSLNet and VSLBase (Zhang et al., ACL 2020) as the Ego4D NLQ reference computes them.

One file, top to bottom in the order data flows:

    video (B, Lv, video_dim) -> VisualProjection ----\\
                                                      FeatureEncoder (ONE module, shared) ->
    query (B, Lq, text_dim)  -> QueryProjection  ----/
    -> ContextQueryAttention (video attends to query and back)
    -> QueryConditionedConcat (video feature ++ attention-pooled query)
    -> Highlighting (VSLNet only): sigmoid score per position; features * score
    -> ConditionedPredictor (start LSTM -> end LSTM, or a shared transformer encoder)
    -> start_logits, end_logits (B, Lv), padding masked to -1e30

Masks are 1 for real positions and 0 for padding (bool or float). Query features come from a
text encoder (`engine.training.text`); the model only projects them to `dim`.

Losses (`VSLNet.compute_loss`): start CE + end CE, plus `highlight_lambda` x the masked,
weighted BCE of the highlight scores (positives weigh 2, negatives 1, padding 0).

Decoding (`VSLNet.predict`): softmax start and end, the outer product, upper triangle only
(start <= end), top-k pairs; `indices_to_seconds` turns indices into clip seconds the way the
reference's `index_to_time` does: start = s / n * duration, end = (e + 1) / n * duration.

Differences from the reference, all deliberate: the highlight loss is computed from logits
(`binary_cross_entropy_with_logits`, safe under bf16 autocast, the same value up to the
reference's log clamp); decoding only ever returns pairs inside the mask with start <= end
(the reference's `topk` can pick zero-probability pairs when a clip has fewer than k valid
pairs); 1x1 Conv1D layers are `nn.Linear` (the same function).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.training.config import ModelConfig

NEG_INF = -1e30


def mask_logits(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x where mask is 1, -1e30 where it is 0 (additive, as the reference)."""
    return x + (1.0 - mask.to(x.dtype)) * NEG_INF


class VisualProjection(nn.Module):
    def __init__(self, in_dim: int, dim: int, drop_rate: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.linear = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.drop(x))


class DepthwiseSeparableConvs(nn.Module):
    """Pre-norm residual stack of depthwise conv -> pointwise conv -> ReLU."""

    def __init__(self, dim: int, kernel: int, layers: int, drop_rate: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, dim, kernel, groups=dim, padding=kernel // 2, bias=False),
                nn.Conv1d(dim, dim, 1),
                nn.ReLU(),
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim, eps=1e-6) for _ in range(layers))
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, conv in zip(self.norms, self.convs):
            y = conv(norm(x).transpose(1, 2)).transpose(1, 2)
            x = self.drop(y) + x
        return x


class MultiHeadAttention(nn.Module):
    """The reference's attention block: pre-norm self-attention, then a norm + linear, both residual."""

    def __init__(self, dim: int, num_heads: int, drop_rate: float) -> None:
        super().__init__()
        self.num_heads, self.head_size = num_heads, dim // num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.drop = nn.Dropout(drop_rate)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.norm1(x))
        q, k, v = self._heads(self.query(h)), self._heads(self.key(h)), self._heads(self.value(h))
        # One fused kernel for scores, key mask, softmax and dropout on the probabilities (the
        # reference's four steps): the same function, a third of the time on a CPU.
        attended = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask.bool()[:, None, None, :],
            dropout_p=self.drop.p if self.training else 0.0,
            scale=1.0 / math.sqrt(self.head_size),
        )
        attended = attended.transpose(1, 2).reshape(x.shape)
        residual = self.drop(attended) + x
        return self.drop(self.out(self.drop(self.norm2(residual)))) + residual


class FeatureEncoder(nn.Module):
    """Learned positional embedding + conv stack + attention; the reference shares ONE for video and query."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pos = nn.Embedding(cfg.max_pos_len, cfg.dim)
        self.convs = DepthwiseSeparableConvs(cfg.dim, cfg.conv_kernel, cfg.conv_layers, cfg.drop_rate)
        self.attention = MultiHeadAttention(cfg.dim, cfg.num_heads, cfg.drop_rate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        return self.attention(self.convs(x + self.pos(positions)), mask)


class ContextQueryAttention(nn.Module):
    """Trilinear similarity, context-to-query and query-to-context attention, fused back to dim."""

    def __init__(self, dim: int, drop_rate: float) -> None:
        super().__init__()
        self.w_context = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.w_query = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.w_mul = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 1, dim)))
        self.drop = nn.Dropout(drop_rate)
        self.fuse = nn.Linear(4 * dim, dim)

    def forward(self, c: torch.Tensor, q: torch.Tensor, c_mask: torch.Tensor, q_mask: torch.Tensor) -> torch.Tensor:
        cd, qd = self.drop(c), self.drop(q)
        # (B, Lc, Lq): w_c.c + w_q.q + w_m.(c*q), the three terms of the trilinear function
        score = (cd @ self.w_context) + (qd @ self.w_query).transpose(1, 2) + (cd * self.w_mul) @ qd.transpose(1, 2)
        c2q_probs = torch.softmax(mask_logits(score, q_mask[:, None, :]), dim=2)
        q2c_probs = torch.softmax(mask_logits(score, c_mask[:, :, None]), dim=1)
        c2q = c2q_probs @ q
        q2c = (c2q_probs @ q2c_probs.transpose(1, 2)) @ c
        return self.fuse(torch.cat([c, c2q, c * c2q, c * q2c], dim=2))


class QueryConditionedConcat(nn.Module):
    """Each video position ++ the attention-pooled query, projected back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pool_weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, context: torch.Tensor, query: torch.Tensor, q_mask: torch.Tensor) -> torch.Tensor:
        alpha = torch.softmax(mask_logits((query @ self.pool_weight).squeeze(2), q_mask), dim=1)
        pooled = (alpha.unsqueeze(1) @ query).expand(-1, context.shape[1], -1)
        return self.linear(torch.cat([context, pooled], dim=2))


class Highlighting(nn.Module):
    """Per-position logit that the position lies in the (extended) answer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask_logits(self.linear(x).squeeze(2), mask)


class ConditionedPredictor(nn.Module):
    """End features are computed from start features, so the end is conditioned on the start."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.predictor
        dim = cfg.dim
        if self.kind == "rnn":
            self.start_rnn = nn.LSTM(dim, dim, batch_first=True)
            self.end_rnn = nn.LSTM(dim, dim, batch_first=True)
        else:
            self.encoder = FeatureEncoder(cfg)
            self.start_norm = nn.LayerNorm(dim, eps=1e-6)
            self.end_norm = nn.LayerNorm(dim, eps=1e-6)
        self.start_head = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.end_head = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask.to(x.dtype).unsqueeze(2)
        if self.kind == "rnn":
            # LSTMs in float32 even under autocast: recurrent state accumulates rounding, and
            # bf16 RNN kernels are not available everywhere.
            with torch.autocast(x.device.type, enabled=False):
                start = self.start_rnn(x.float())[0] * m.float()
                end = self.end_rnn(start)[0] * m.float()
        else:
            start = self.encoder(x, mask)
            end = self.encoder(start, mask)
            start, end = self.start_norm(start), self.end_norm(end)
        start_logits = self.start_head(torch.cat([start, x], dim=2)).squeeze(2)
        end_logits = self.end_head(torch.cat([end, x], dim=2)).squeeze(2)
        return mask_logits(start_logits, mask), mask_logits(end_logits, mask)


@dataclass
class Outputs:
    start_logits: torch.Tensor  # (B, Lv), padding -1e30
    end_logits: torch.Tensor  # (B, Lv)
    highlight_logits: torch.Tensor | None  # (B, Lv); None for VSLBase


class VSLNet(nn.Module):
    """VSLNet (cfg.model == "vslnet") or VSLBase ("vslbase": the same without highlighting)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.video_proj = VisualProjection(cfg.video_dim, cfg.dim, cfg.drop_rate)
        self.query_proj = nn.Linear(cfg.text_dim, cfg.dim)  # the reference's query_affine (BERT path)
        self.encoder = FeatureEncoder(cfg)
        self.cq_attention = ContextQueryAttention(cfg.dim, cfg.drop_rate)
        self.cq_concat = QueryConditionedConcat(cfg.dim)
        self.highlight = Highlighting(cfg.dim) if cfg.model == "vslnet" else None
        self.predictor = ConditionedPredictor(cfg)
        self.apply(_init_weights)

    def forward(
        self, video: torch.Tensor, video_mask: torch.Tensor, query: torch.Tensor, query_mask: torch.Tensor
    ) -> Outputs:
        video_mask, query_mask = video_mask.float(), query_mask.float()
        v = self.encoder(self.video_proj(video.float()), video_mask)
        q = self.encoder(self.query_proj(query.float()), query_mask)
        x = self.cq_attention(v, q, video_mask, query_mask)
        x = self.cq_concat(x, q, query_mask)
        highlight_logits = None
        if self.highlight is not None:
            highlight_logits = self.highlight(x, video_mask)
            x = x * torch.sigmoid(highlight_logits).unsqueeze(2)
        start_logits, end_logits = self.predictor(x, video_mask)
        return Outputs(start_logits, end_logits, highlight_logits)

    def compute_loss(self, outputs: Outputs, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total loss, {"loss_start_end", "loss_highlight"} as detached scalars).

        `batch` needs `start`, `end` (B,) long, `video_mask` and `highlight` (B, Lv).
        """
        start_end = F.cross_entropy(outputs.start_logits.float(), batch.start) + F.cross_entropy(
            outputs.end_logits.float(), batch.end
        )
        if outputs.highlight_logits is None:
            highlight = torch.zeros((), device=start_end.device)
            total = start_end
        else:
            highlight = highlight_loss(outputs.highlight_logits, batch.highlight, batch.video_mask)
            total = start_end + self.cfg.highlight_lambda * highlight
        return total, {"loss_start_end": start_end.detach(), "loss_highlight": highlight.detach()}

    @torch.no_grad()
    def predict(self, outputs: Outputs, video_mask: torch.Tensor, topk: int = 5) -> torch.Tensor:
        """LongTensor (B, topk, 2) of (start, end) position indices, best first; start <= end, both in the mask."""
        return decode_spans(outputs.start_logits, outputs.end_logits, video_mask, topk)


def highlight_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Masked weighted BCE: weight 2 inside the extended answer, 1 outside, 0 on padding."""
    labels = labels.float()
    mask = mask.float()
    weights = torch.where(labels > 0, 2.0 * labels, torch.ones_like(labels))
    per_position = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (per_position * weights * mask).sum() / (mask.sum() + eps)


def decode_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, mask: torch.Tensor, topk: int) -> torch.Tensor:
    """Top-k (start, end) pairs of P(start) * P(end) over start <= end inside the mask."""
    b, n = start_logits.shape
    start_p = torch.softmax(start_logits.float(), dim=1)
    end_p = torch.softmax(end_logits.float(), dim=1)
    joint = start_p.unsqueeze(2) * end_p.unsqueeze(1)  # (B, n, n)
    m = mask.bool()
    valid = torch.triu(torch.ones(n, n, dtype=torch.bool, device=joint.device)) & m[:, :, None] & m[:, None, :]
    # -1 (below any probability) rather than 0, so pairs outside never beat a valid pair of probability 0
    joint = joint.masked_fill(~valid, -1.0).view(b, -1)
    k = min(topk, n * n)
    scores, flat = joint.topk(k, dim=1)
    # A clip with fewer valid pairs than k repeats its best pair instead of returning invalid ones.
    flat = torch.where(scores >= 0, flat, flat[:, :1])
    if k < topk:
        flat = torch.cat([flat, flat[:, :1].expand(-1, topk - k)], dim=1)
    return torch.stack([flat // n, flat % n], dim=2)


def indices_to_seconds(indices: torch.Tensor, num_positions: torch.Tensor, duration: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) clip seconds from position indices, as the reference's `index_to_time`.

    Position i covers [i / n * duration, (i + 1) / n * duration), where n is the clip's number of
    (pooled) positions and `duration` its feature-grid duration (`Batch.duration`).
    """
    n = num_positions.double().view(-1, 1)
    d = duration.double().view(-1, 1)
    start = indices[..., 0].double() / n * d
    end = (indices[..., 1].double() + 1.0) / n * d
    return torch.stack([start, end], dim=2)


def _init_weights(module: nn.Module) -> None:
    # The reference: Xavier-uniform conv/linear weights, zero biases; LSTM and embeddings keep torch's init.
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as the reference: no weight decay on biases and LayerNorm weights."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_norm = isinstance(_owner(model, name), nn.LayerNorm)
        (no_decay if name.endswith("bias") or is_norm else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _owner(model: nn.Module, param_name: str) -> nn.Module:
    owner = model
    for part in param_name.split(".")[:-1]:
        owner = getattr(owner, part)
    return owner
