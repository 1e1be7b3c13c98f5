"""dev.py's torch choice: the decision with fake probes, and the probe itself on loopback."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dev():
    spec = importlib.util.spec_from_file_location("nlq_dev", ROOT / "dev.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


dev = _dev()


def _never(*_a):
    raise AssertionError("this probe must not run")


def test_driver_present_takes_the_cuda_build_without_probing_the_cpu_index():
    c = dev.choose_torch({}, driver=lambda: True, reachable=_never)
    assert c.spec == f"torch=={dev.TORCH_VERSION}" and c.pip_args == [] and "CUDA" in c.reason


def test_no_driver_and_reachable_cpu_index_takes_the_cpu_build_from_it():
    seen = []
    c = dev.choose_torch({}, driver=lambda: False, reachable=lambda url: seen.append(url) or True)
    assert c.pip_args == ["--index-url", dev.CPU_INDEX] and "CPU build" in c.reason
    assert seen == [f"{dev.CPU_INDEX}/torch/"]


def test_no_driver_and_unreachable_index_falls_back_to_the_configured_index():
    c = dev.choose_torch({}, driver=lambda: False, reachable=lambda url: False)
    assert c.pip_args == [] and "did not answer" in c.reason


def test_forcing_either_build_overrides_the_driver_probe():
    assert dev.choose_torch({"NLQ_TORCH": "cuda"}, driver=lambda: False, reachable=_never).pip_args == []
    cpu = dev.choose_torch({"NLQ_TORCH": "cpu"}, driver=lambda: True, reachable=lambda url: True)
    assert cpu.pip_args == ["--index-url", dev.CPU_INDEX]


def test_a_spec_or_an_index_from_the_environment_is_taken_as_given():
    c = dev.choose_torch({"NLQ_TORCH": "torch==2.9.1+cpu"}, driver=_never, reachable=_never)
    assert c.spec == "torch==2.9.1+cpu" and c.pip_args == []
    c = dev.choose_torch({"NLQ_TORCH_INDEX": "http://127.0.0.1:9/simple"}, driver=_never, reachable=_never)
    assert c.pip_args == ["--index-url", "http://127.0.0.1:9/simple"]


def test_the_choice_is_part_of_the_venv_stamp():
    a = dev.choose_torch({"NLQ_TORCH": "cpu"}, driver=lambda: False, reachable=lambda url: True)
    b = dev.choose_torch({"NLQ_TORCH": "cpu"}, driver=lambda: False, reachable=lambda url: False)
    assert dev._stamp(a.key()) != dev._stamp(b.key())


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_a):
        pass


def test_probe_sees_a_loopback_index_that_answers():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert dev.index_reachable(f"http://127.0.0.1:{srv.server_address[1]}/torch/", timeout=5)
    finally:
        srv.shutdown()


def test_probe_of_a_closed_port_is_false_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    t0 = time.monotonic()
    assert not dev.index_reachable(f"http://127.0.0.1:{port}/torch/", timeout=5)
    assert time.monotonic() - t0 < 5


@pytest.mark.timeout(30)
def test_probe_of_a_server_that_never_answers_gives_up_at_its_deadline():
    # Accepts the connection and then says nothing: the network that would hang a set-up.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        t0 = time.monotonic()
        assert not dev.index_reachable(f"http://127.0.0.1:{srv.getsockname()[1]}/torch/", timeout=1.0)
        assert time.monotonic() - t0 < 3.0
    finally:
        srv.close()
