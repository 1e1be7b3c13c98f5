"""Hostile inputs for the render test: an Ego4D tree, a workspace and an LLM server full of them.

Every string that comes from outside the app (narration text, clip and video uids, NLQ queries,
LLM questions, server error bodies, reject reasons, edited text, run errors and logs, the data
root and workspace paths) carries `payload(TAG)`: markup that both parsers would act on
(`[/]`, `[bold red]`, `[link=file:///etc/passwd]`, `[@click=app.quit]`, `[$accent]`, `[ $x]`),
OSC 52 / OSC 2 sequences ended by BEL and by ST, CSI screen clears, a C1 CSI, and a lone
surrogate. TAG is a plain word that must show up on screen, so a test can tell that the data
was drawn (made harmless) and not just left out.

`Terminal` records what Textual's driver writes to the terminal (the headless driver writes
nothing, so a recording one stands in for it) and `Terminal.foreign_controls()` lists every
control sequence or character in it that Textual itself does not emit.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ESC = "\x1b"


def payload(tag: str, surrogate: bool = True) -> str:
    """One hostile string around the marker `tag` (which stays readable on screen)."""
    lone = "\ud800 " if surrogate else ""
    return (
        f"{tag} [/] [bold red]x[/] [link=file:///etc/passwd]L[/link] [@click=app.quit]Q[/] [$accent] [ $x] "
        f"\x1b]52;c;SGVsbG8=\x07 \x1b]2;PWNED\x1b\\ \x1b[2J\x1b[?1049l \x9b6n {lone}\\[/] {tag}"
    )


_payload = payload
BIG_NARRATION = "#C C " + "stirs the pot " * 7200  # about 100k characters in one narration


# -- what the driver writes -------------------------------------------------------------------

# What Textual writes on its own: SGR colours, cursor moves, synchronized-update brackets,
# cursor show/hide, and OSC 22 (the mouse pointer shape) ended by BEL.
_TEXTUAL_OWN = re.compile(r"\x1b\[[0-9;:]*[mHABCD]|\x1b\[\?(?:2026|25)[hl]|\x1b\]22;[a-z-]*\x07")
_FOREIGN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class Terminal:
    """The output Textual's driver wrote during a test."""

    def __init__(self) -> None:
        self.chunks: list[str] = []

    def text(self) -> str:
        return "".join(self.chunks)

    def foreign_controls(self) -> list[str]:
        """Each control character left once Textual's own sequences are removed, with context."""
        out = self.text()
        rest = _TEXTUAL_OWN.sub("", out)
        found = []
        for m in _FOREIGN.finditer(rest):
            found.append(repr(rest[max(0, m.start() - 30) : m.start() + 30]))
            if len(found) >= 5:
                break
        return found

    def shows(self, word: str) -> bool:
        """`word` appears in the drawn text (style sequences removed)."""
        return word in _TEXTUAL_OWN.sub("", self.text())


def install_recording_driver(monkeypatch) -> Terminal:
    """Make `App.run_test` use a driver that records what it writes; returns the record."""
    from textual.drivers import headless_driver

    terminal = Terminal()

    class RecordingDriver(headless_driver.HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            # The app only renders to the driver when it is not headless; nothing reaches a tty.
            return False

        def write(self, data: str) -> None:
            terminal.chunks.append(data)

    # App._build_driver imports HeadlessDriver from this module at the time the app starts.
    monkeypatch.setattr(headless_driver, "HeadlessDriver", RecordingDriver)
    return terminal


# -- the Ego4D tree -----------------------------------------------------------------------------

VIDEO_UID = payload("VUID")
CLIP_UID = payload("CUID")


def _replace_strings(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, str):
        return new if obj == old else obj
    if isinstance(obj, list):
        return [_replace_strings(x, old, new) for x in obj]
    if isinstance(obj, dict):
        return {(new if k == old else k): _replace_strings(v, old, new) for k, v in obj.items()}
    return obj


def write_hostile_tree(root: Path) -> Path:
    """An Ego4D tree whose uids, narrations, queries and one unknown field are hostile; one
    narration is about 100k characters. The layout is the real one (tests/ego4d_fixtures.py)."""
    from ego4d_fixtures import EGO4D, NARRATION, NLQ, _uid, video, write_tree

    texts = [
        (1.0, "#C C " + payload("NARR")),
        (3.0, "#C C picks up the knife"),
        (5.0, "#C C " + payload("NARR")),
        (7.0, BIG_NARRATION),
        (9.0, "#C C opens the tap"),
        (11.0, "#C C " + payload("NARR")),
        (13.0, "#C C washes the plate"),
        (15.0, "#C C dries the plate"),
    ]
    write_tree(
        root,
        videos=[
            video("hostile-video", clips=[(0.0, 60.0)], pass1=texts, features=False),
            video("plain-video", clips=[(0.0, 60.0)], pass1=list(reversed(texts[:6])), features=False),
            video("val-video", clips=[(0.0, 30.0)], split="val", features=False),
        ],
        features=None,
    )
    # 0-byte feature files (a --no-features tree) for the videos whose uid can be a file name
    features = root / "v1" / "egovlp_fp16"
    features.mkdir(parents=True)
    for uid in ("plain-video", "val-video"):
        (features / f"{uid}.pt").write_bytes(b"")
    # uids are written plain (the writer hashes them) and made hostile afterwards
    old_clip = _uid("hostile-video", "clip", 0)
    for rel in (EGO4D, NARRATION, *NLQ.values()):
        path = root / rel
        obj = _replace_strings(json.loads(path.read_text("utf-8")), old_clip, CLIP_UID)
        obj = _replace_strings(obj, "hostile-video", VIDEO_UID)
        if rel == NLQ["train"]:
            for v in obj["videos"]:
                for c in v["clips"]:
                    for a in c["annotations"]:
                        for q in a["language_queries"]:
                            q["query"] = payload("QUERY")
                            q["template"] = payload("TEMPLATE")
        if rel == NARRATION:
            obj[VIDEO_UID]["narration_pass_1"]["narrations"][1][payload("FIELD")] = 1
        path.write_text(json.dumps(obj), "utf-8")  # ensure_ascii: the lone surrogates survive as \\ud800
    return root


def hostile_root(base: Path) -> Path:
    """A data root whose path holds `[/]` across a separator, markup and an OSC 2 sequence."""
    root = base / "r[" / "]oot[$accent][ $x][b]\x1b]2;PATHX\x07"
    root.mkdir(parents=True)
    return root


def hostile_workspace_path(base: Path) -> Path:
    return base / "w[" / "]s[@click=app.quit]\x1b]2;WSX\x07"


# -- the workspace ------------------------------------------------------------------------------


def write_hostile_workspace(ws_path: Path, surrogates: bool = True) -> dict:
    """Candidates (questions, uids, narrations), decisions (a reject, an edit, an accept), a
    generation-time rejection and a failed run with a hostile error and log; returns what it made.
    `surrogates=False` leaves the lone surrogate out of the stored candidates' text."""

    def payload(tag: str) -> str:
        return _payload(tag, surrogates)

    from review_fixtures import make_group

    from engine.runs import create_run
    from engine.store import CandidateStore
    from engine.workspace import Workspace, atomic_write_json

    ws = Workspace(ws_path)
    store = CandidateStore(ws, reviewer="tester")
    made: dict = {"ids": []}
    for g in range(2):
        video_uid, clip_uid = payload("VUID"), payload("CUID")
        gk, cands, rejected, meta = make_group(video_uid, clip_uid, 0.0, 60.0, 2.0 + g, k=5, number0=g * 5)
        for i, c in enumerate(cands):
            c["query"] = payload("QUESTION") if i % 2 == 0 else f"Where did I put the knife {i}?"
            c["narration"]["text"] = "#C C " + payload("NARR")
            c["group_narrations"][0]["text"] = BIG_NARRATION
            c["group_narrations"][1]["text"] = "#C C " + payload("NARR")
            c["raw"] = payload("RAW")
            c["checks"]["template"] = payload("TEMPLATE")
            c["model"] = payload("MODEL")
        rejected = [{"narration": 5, "query": payload("REJQ"), "reason": payload("REJR")}]
        store.add_group_result(gk, cands, rejected, dict(meta, model=payload("MODEL")), raw=payload("RAW"))
        made["ids"].extend(c["id"] for c in cands)
    store.begin_review()
    first = made["ids"]
    store.decide(first[0], "reject")
    store.decide(first[1], "edit", text=payload("EDIT"))
    store.decide(first[2], "accept")
    store.close()

    run = create_run(ws, {"stage": "baseline", "train": {"batch_size": 8}, "note": payload("CONFIG")})
    rows = [{"step": 10 * i, "epoch": i / 10, "loss": 3.0 / i, "lr": 1e-4} for i in range(1, 6)]
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(
        run.status_path,
        {"state": "failed", "pid": None, "heartbeat": time.time(), "error": payload("RUNERR")},
    )
    run.log_path.write_text("".join(f"step {i} {payload('LOG')}\n" for i in range(8)), "utf-8", errors="surrogatepass")
    made["run"] = run.id
    return made


# -- an LLM server that answers with hostile questions or a hostile error body ----------------------


class HostileLLMServer:
    """OpenAI-compatible chat completions on loopback. `mode`: "questions" (one hostile question
    per numbered narration) or "error" (HTTP 400 whose message is hostile and 100k long)."""

    def __init__(self, mode: str = "questions") -> None:
        self.mode = mode
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(n) or b"{}")
                server.requests += 1
                user = next(
                    (m.get("content", "") for m in reversed(req.get("messages", [])) if m["role"] == "user"), ""
                )
                numbers = [int(x) for x in re.findall(r"^\s*(\d+)\.\s", user or "", re.M)] or [1]
                if server.mode == "error":
                    message = payload("SRVERR") + " " + "y" * 100_000
                    self._send(400, {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                qs = [{"narration": k, "query": f"Where is it {payload('LLMQ')}?"} for k in numbers]
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": req.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": json.dumps({"questions": qs})},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> HostileLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
