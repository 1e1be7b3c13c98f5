"""A generation job's figures: groups, requests, failures by reason, tokens, cost, rate."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    groups_total: int = 0  # groups selected
    groups_skipped: int = 0  # already done before this run
    groups_done: int = 0  # stored by this run
    groups_failed: int = 0  # not stored: request failed for good (retried next run)
    requests: int = 0  # backend requests that completed (answered or failed for good)
    failed_requests: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> failed requests
    retries: Counter = field(default_factory=Counter)  # reason -> retried attempts
    questions_valid: int = 0
    rejected: Counter = field(default_factory=Counter)  # validation reason -> questions
    flagged: Counter = field(default_factory=Counter)  # quality flag -> candidates
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    state: str = "idle"  # idle | running | paused | cancelled | done | failed
    error: str | None = None
    variant: str = ""
    step: str = ""  # what the job is doing besides requests ("loading the sentence encoder")
    checks_pending: int = 0  # candidates stored whose embedding checks have not been filled in yet
    questions_checked: int = 0  # candidates whose embedding checks ran (for the checks' own rate)
    check_seconds: float = 0.0  # time spent in the embedding checks
    checks_error: str | None = None  # why the embedding checks stopped (the candidates stay pending)
    requests_done_at: float | None = None  # when the last request was answered and its group stored

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def remaining(self) -> int:
        return max(0, self.groups_total - self.groups_skipped - self.groups_done - self.groups_failed)

    @property
    def rate(self) -> float:
        """Groups finished per second in this run (until the last request, not the checks' catch-up)."""
        s = self.request_seconds
        return (self.groups_done + self.groups_failed) / s if s > 0 else 0.0

    @property
    def request_seconds(self) -> float:
        return (self.requests_done_at - self.started) if self.requests_done_at else self.seconds

    @property
    def eta(self) -> float | None:
        r = self.rate
        return self.remaining / r if r > 0 else None

    def as_json(self) -> dict:
        return {
            "state": self.state,
            "variant": self.variant,
            "step": self.step,
            "checks_pending": self.checks_pending,
            "checks_error": self.checks_error,
            "request_seconds": round(self.requests_done_at - self.started, 3) if self.requests_done_at else None,
            "checks_per_second": round(self.questions_checked / self.check_seconds, 1) if self.check_seconds else None,
            "groups_total": self.groups_total,
            "groups_skipped": self.groups_skipped,
            "groups_done": self.groups_done,
            "groups_failed": self.groups_failed,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "failures": dict(self.failures),
            "retries": dict(self.retries),
            "questions_valid": self.questions_valid,
            "questions_rejected": dict(self.rejected),
            "flagged": dict(self.flagged),
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": None if self.cost is None else round(self.cost, 6),
            "seconds": round(self.seconds, 3),
            "groups_per_second": round(self.rate, 3),
            "requests_per_second": round(self.requests / self.request_seconds, 3) if self.request_seconds > 0 else 0.0,
            "error": self.error,
        }
