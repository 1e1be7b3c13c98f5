"""What the review queue, a bulk rule and an export select: statuses and the `Filter` (docs/ARCHITECTURE.md, "Store")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.candidate import FLAG_BITS

if TYPE_CHECKING:
    from engine.store.shards import Row

STATUSES = ("pending", "accepted", "edited", "rejected", "skipped", "flagged")
REVIEWED = frozenset({"accepted", "edited", "rejected"})
OPEN = frozenset({"pending", "skipped", "flagged"})


@dataclass
class Filter:
    """What the review queue shows. Empty fields match everything.

    status: a set of statuses, or "open" (pending, skipped, flagged) / "all".
    flags: "any" | "none" | a flag name ("duplicate", "near-duplicate", "ambiguous", "window", "validation").
    variants: names of variants to keep (empty: all).
    """

    status: str | frozenset[str] = "open"
    backend_model: str = ""
    prompt_version: str = ""
    flags: str = "any"
    max_ambiguity: int | None = None
    template: str = ""
    video: str = ""
    text: str = ""
    variants: frozenset[str] = field(default_factory=frozenset)

    def statuses(self) -> frozenset[str] | None:
        if self.status == "all":
            return None
        if self.status == "open":
            return OPEN
        if isinstance(self.status, str):
            return frozenset(s.strip() for s in self.status.split(",") if s.strip())
        return frozenset(self.status)

    def predicate(self, states: dict[str, dict]) -> Callable[[Row], bool]:
        """A test of one row against this filter, given the candidates' review states."""
        states = getattr(states, "states", states)  # a store, or its states
        statuses = self.statuses()
        needle = self.text.strip().lower()
        flag_bit = FLAG_BITS.get(self.flags)
        if self.flags not in ("any", "none") and flag_bit is None:
            raise ValueError(f"unknown flag filter {self.flags!r}")
        variants = frozenset(self.variants)

        def pred(r: Row) -> bool:
            if statuses is not None:
                st = states.get(r.id)
                if (st["status"] if st else "pending") not in statuses:
                    return False
            if variants and r.variant not in variants:
                return False
            if (
                self.backend_model
                and f"{r.backend}/{r.model}" != self.backend_model
                and r.model != self.backend_model
                and r.backend != self.backend_model
            ):
                return False
            if self.prompt_version and r.prompt_version != self.prompt_version:
                return False
            if self.flags == "none" and r.flags:
                return False
            if flag_bit is not None and not r.flags & flag_bit:
                return False
            # An ambiguity that was never computed (-1) is not "ambiguity 0".
            if self.max_ambiguity is not None and not 0 <= r.ambiguity <= self.max_ambiguity:
                return False
            if self.template and r.template != self.template:
                return False
            if self.video and not r.video_uid.startswith(self.video):
                return False
            if needle:
                st = states.get(r.id)
                text = st["text"] if st and st.get("text") else r.query
                if needle not in text.lower():
                    return False
            return True

        return pred

    def select(self, rows: Iterable[Row], states: dict[str, dict]) -> list[Row]:
        pred = self.predicate(states)
        return [r for r in rows if pred(r)]

    def describe(self) -> str:
        parts = []
        st = self.status if isinstance(self.status, str) else ",".join(sorted(self.status))
        parts.append(f"status={st}")
        if self.variants:
            parts.append(f"variant={','.join(sorted(self.variants))}")
        for name in ("backend_model", "prompt_version", "template", "video", "text"):
            v = getattr(self, name)
            if v:
                parts.append(f"{name}={v}")
        if self.flags != "any":
            parts.append(f"flags={self.flags}")
        if self.max_ambiguity is not None:
            parts.append(f"ambiguity<={self.max_ambiguity}")
        return " ".join(parts)
