"""SIGKILL a process that is writing to the store at random moments; nothing acknowledged is lost."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from review_fixtures import make_group, populate

from engine.store import CandidateStore
from engine.workspace import Workspace

HERE = Path(__file__).parent

# Decides, undoes and bulk-accepts as fast as it can, printing each entry after the store
# returned (the moment the screen would show the next candidate).
REVIEWER = r"""
import json, random, sys, threading, time
import engine.store as m
import engine.store.journal as j
j.COMPACT_EVERY = int(sys.argv[3])
s = m.CandidateStore(sys.argv[1], reviewer="crash").load()
s.begin_review()
fold_every = int(sys.argv[4])
def fold_beside():  # as the review screen's worker folds, while decisions go on
    while True:
        s.journal.compact_if_due(s.log.mutex, every=fold_every)
        time.sleep(0.001)
if fold_every:
    threading.Thread(target=fold_beside, daemon=True).start()
ids = [r.id for r in s.rows]
rng = random.Random(int(sys.argv[2]))
print("ready", flush=True)
while True:
    x = rng.random()
    if x < 0.15:
        step = s.undo()
        entry = {"op": "undo", "target": step.seq if step else None}
    elif x < 0.2:
        pick = rng.sample(ids, 25)
        step = s.bulk(pick, "accept", rule="crash test")
        entry = {"op": "bulk", "seq": step.seq, "ids": pick, "status": "accepted"}
    else:
        cid = rng.choice(ids)
        action = rng.choice(["accept", "reject", "edit", "skip", "flag"])
        step = s.decide(cid, action, reason="ambiguous" if action == "reject" else None,
                        text="edited %d" % rng.randrange(10**6) if action == "edit" else None)
        entry = {"op": "decide", "seq": step.seq, "ids": [cid], "status": step.status, "text": step.text}
    entry["journal_seq"] = s._seq
    print(json.dumps(entry), flush=True)
"""

GENERATOR = r"""
import sys
sys.path.insert(0, sys.argv[3])
from engine.store import CandidateStore
from review_fixtures import make_group
s = CandidateStore(sys.argv[1])
start = int(sys.argv[2])
print("ready", flush=True)
for g in range(start, start + 100000):
    gk, c, r, meta = make_group("video-k", "clip-k", 0.0, 900.0, 1.0 + g % 100, number0=g * 5)
    s.add_group_result(gk, c, r, meta)
    print(gk, flush=True)
"""


def _run_and_kill(args, rng):
    proc = subprocess.Popen(
        [sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # a line cut off by the kill was never acknowledged
    return [line for line in out.split("\n")[:-1]]


class Model:
    """What the acknowledged entries say the statuses are (an undo stack, like the store's)."""

    def __init__(self):
        self.status = {}
        self.stack = []
        self.seq = 0

    def apply(self, e):
        if e["op"] == "undo":
            if e["target"] is None:
                assert not self.stack
                return
            seq, before = self.stack.pop()
            assert seq == e["target"]
            for cid, st in before.items():
                if st is None:
                    self.status.pop(cid, None)
                else:
                    self.status[cid] = st
        else:
            before = {cid: self.status.get(cid) for cid in e["ids"]}
            for cid in e["ids"]:
                self.status[cid] = (e["status"], e.get("text"))
            self.stack.append((e["seq"], before))


def _statuses(store):
    return {cid: (st["status"], st.get("text")) for cid, st in store.states.items()}


@pytest.mark.parametrize(
    ("compact_every", "fold_every"),
    [(40, 0), (10**9, 15)],
    ids=["folded-in-a-keypress", "folded-beside-the-review"],
)
def test_sigkill_during_review_loses_no_acknowledged_decision(tmp_path, compact_every, fold_every):
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    populate(s, 200)
    s.close()
    rng = random.Random(5)
    model = Model()
    total_acked = 0
    for round_no in range(6):
        acked = [
            json.loads(line)
            for line in _run_and_kill([REVIEWER, str(ws.path), str(round_no), str(compact_every), str(fold_every)], rng)
        ]
        total_acked += len(acked)
        reopened = CandidateStore(ws).load()
        assert reopened.problems == []
        for e in acked:
            model.apply(e)
        # The kill can land after the fsync but before the print: at most one entry more,
        # which the model takes from the journal.
        if acked:
            model.seq = acked[-1]["journal_seq"]
        journal = [json.loads(x) for x in (ws.candidates_dir / "decisions.jsonl").read_text().splitlines()]
        extra = [e for e in journal if e["seq"] > model.seq]
        if not extra and reopened._seq == model.seq + 1:
            # The unacknowledged entry was folded into the snapshot before the kill: take a
            # decision from the snapshot's undo steps; an undo left no step behind.
            snap = json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())
            steps = [st for st in snap["undo"] if st["seq"] == reopened._seq]
            extra = steps or [{"seq": reopened._seq, "op": "undo", "target": model.stack[-1][0]}]
        assert len(extra) <= 1 and reopened._seq == (extra[-1]["seq"] if extra else model.seq)
        for e in extra:
            model.apply(e)
            model.seq = e["seq"]
        assert _statuses(reopened) == model.status
        assert reopened.counts()["pending"] == len(reopened.rows) - len(model.status)
        reopened.close()
    assert total_acked > 50  # the kills did land in the middle of real work
    snap = json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())
    assert snap["upto_seq"] > 0  # and the journal was folded, in a keypress or beside the review


def test_sigkill_during_generation_keeps_every_acknowledged_group(tmp_path):
    ws = Workspace(tmp_path / "ws")
    rng = random.Random(7)
    acked = set()
    start = 0
    for _ in range(4):
        keys = _run_and_kill([GENERATOR, str(ws.path), str(start), str(HERE)], rng)
        acked.update(keys)
        start += 100000
        reopened = CandidateStore(ws).load()
        done = reopened.done_groups()
        assert acked <= done and len(done - acked) <= 1
        acked = set(done)  # an extra one was stored but killed before its print
        assert reopened.problems == []
        for gk in list(done)[:5]:
            assert reopened.get(reopened.groups[("openai-gpt-4o-mini-v1", gk)][0].id).group_key == gk
    # a fresh writer repairs any torn tail and appends cleanly after it
    w = CandidateStore(ws)
    gk, c, r, meta = make_group("video-z", "clip-z", 0.0, 90.0, 1.0, number0=10**7)
    assert w.add_group_result(gk, c, r, meta)
    w.close()
    assert all(
        p.read_bytes().endswith(b"\n") or p.stat().st_size == 0 for p in ws.candidates_dir.glob("groups-*.jsonl")
    )
    assert gk in CandidateStore(ws).done_groups()
