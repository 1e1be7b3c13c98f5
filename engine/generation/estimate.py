"""The cost of a job before it runs: requests, prompt and completion tokens, money.

The prompt side is counted on the exact messages the job would send (the job's prompt through
`Prompt.messages`, the builder each request uses) for a sample of the groups it has to do,
scaled to all of them. Tokens are counted with `tiktoken` when it is installed and its
encoding is available offline, else by a word-piece rule close to BPE on English text; and
when this workspace already holds answers of the same backend and model, the server's own
prompt-token figures correct the count (docs/ARCHITECTURE.md, "Generation").
"""

from __future__ import annotations

import re

import numpy as np

SAMPLE = 256  # groups whose messages are counted
PER_MESSAGE = 4  # chat-format tokens around each message (role, separators)
PER_REPLY = 3  # tokens that prime the answer
PER_QUESTION = 24  # completion tokens per narration: {"narration": N, "query": "...?"} of ~12 words
_PIECE = re.compile(r"[A-Za-z]{1,6}|[0-9]{1,3}|\s+|[^\sA-Za-z0-9]")


def _tiktoken_counter():
    try:
        import tiktoken  # optional

        enc = tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - not installed, or its files are not cached offline
        return None
    return lambda text: len(enc.encode(text, disallowed_special=()))


def _piece_count(text: str) -> int:
    # Spaces merge into the next word in BPE vocabularies; a long word splits every ~6 letters.
    return sum(1 for p in _PIECE.findall(text) if not p.isspace())


def count_message_tokens(messages: list[dict], counter=None) -> int:
    count = counter or _piece_count
    return sum(PER_MESSAGE + count(str(m.get("content", ""))) for m in messages) + PER_REPLY


def _measured_ratio(job, counter) -> float | None:
    """Server prompt tokens / our count for groups this backend and model answered before."""
    store = job.store
    rows = store.rows
    backend, model = job.backend.name, job.backend.model
    server = ours = 0
    seen: set[str] = set()
    for r in rows:
        if len(seen) >= 64:
            break
        if r.group_key in seen or r.backend != backend or r.model != model:
            continue
        seen.add(r.group_key)
        try:
            line = store.group_result(r.group_key)
        except (KeyError, OSError, ValueError):
            continue
        meta = line.get("meta") if isinstance(line, dict) else None
        pt = meta.get("prompt_tokens") if isinstance(meta, dict) else None
        cands = line.get("candidates") or []
        if not isinstance(pt, int) or pt <= 0 or not cands or not isinstance(cands[0], dict):
            continue
        texts = [n.get("text", "") for n in cands[0].get("group_narrations") or [] if isinstance(n, dict)]
        if not texts:
            continue
        server += pt
        ours += count_message_tokens(job.prompt.messages(texts), counter)
    return server / ours if server and ours else None


def estimate_job(job) -> dict:
    """Requests, tokens and cost of a GenerationJob's remaining groups (prepared here, without
    taking the writer lock, when it is not yet)."""
    if job.reader is None:
        job.prepare(lock=False)
    todo = list(job.todo)
    n = len(todo)
    backend = job.backend
    out = {"requests": n, "groups": n, "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0, "cost": None,
           "paid": bool(backend.paid()), "token_method": "none", "price_in": backend.price_in,
           "price_out": backend.price_out, "llm": bool(backend.needs_messages)}  # fmt: skip
    if not n or not backend.needs_messages:
        out["cost"] = backend.cost(0, 0)
        return out
    counter = _tiktoken_counter()
    pick = np.linspace(0, n - 1, num=min(SAMPLE, n)).round().astype(np.int64)
    texts, _flags = job.reader.texts(np.asarray(todo, dtype=np.int64)[np.unique(pick)])
    per_group = [count_message_tokens(job.prompt.messages(t), counter) for t in texts]
    mean_prompt = float(np.mean(per_group))
    method = "tiktoken o200k_base" if counter else "word pieces"
    ratio = _measured_ratio(job, counter)
    if ratio is not None:
        mean_prompt *= ratio
        method += ", scaled to this server's counts"
    k = job.params.k
    max_tokens = getattr(backend, "max_tokens", None) or getattr(backend, "max_new_tokens", None)
    completion = PER_QUESTION * k + 8
    if isinstance(max_tokens, int) and max_tokens > 0:
        completion = min(completion, max_tokens)
    out["prompt_tokens"] = int(round(mean_prompt * n))
    out["completion_tokens"] = int(completion * n)
    out["tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    out["cost"] = backend.cost(out["prompt_tokens"], out["completion_tokens"])
    out["token_method"] = method
    return out
