"""TensorBoard event files of a run, so `tensorboard --logdir WS/runs` shows every run
(docs/ARCHITECTURE.md, "Runs").

Scalars are written by a small pure-Python event writer (the TFRecord framing with masked
CRC-32C, and the few protobuf fields of `Event` and `Summary.Value.simple_value`), so every run
has its curves without TensorFlow and even without the `tensorboard` package; the hparams
plugin's records need tensorboard's own protos and are written when it is installed
(`pip install nlq-tui[tb]`).

Tags: `train/<key>` for every number of a training row (loss, lr, samples_per_s, loss parts),
`<split>/<key>` for every figure of an evaluation row, `<split>/best_R1@0.3` for the best so far.
A resumed run first writes a SessionLog START at its step, which makes TensorBoard drop the
events the previous process logged after that step (as `metrics.jsonl` is truncated there).

Each record is appended with its own open/write/close, so a run killed at any moment leaves
whole records behind and nothing to flush.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

BEST_KEY = "R1@0.3"
SKIP = ("step", "epoch", "split")


# ---------------------------------------------------------------------------------------------
# CRC-32C and TFRecord framing


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


# ---------------------------------------------------------------------------------------------
# the protobuf fields used here


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 negatives as two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def scalar_value(tag: str, value: float) -> bytes:
    """Summary.Value {tag = 1, simple_value = 2 (float)}."""
    return _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(value))


def event(*, wall_time: float, step: int = 0, summary: bytes | None = None, **extra: bytes) -> bytes:
    """Event {wall_time = 1 (double), step = 2, file_version = 3, summary = 5, session_log = 7}."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)
    if step:
        out += _varint(2 << 3 | 0) + _varint(int(step))
    if "file_version" in extra:
        out += _field_bytes(3, extra["file_version"])
    if summary is not None:
        out += _field_bytes(5, summary)
    if "session_log" in extra:
        out += _field_bytes(7, extra["session_log"])
    return out


# ---------------------------------------------------------------------------------------------
# the writer


class EventWriter:
    """Appends events to one `events.out.tfevents.*` file in `logdir`."""

    def __init__(self, logdir: str | Path, *, purge_step: int | None = None) -> None:
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        n = 0
        while True:  # one file per writer, even for two writers of one process in one second
            self.path = self.logdir / f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{n}"
            if not self.path.exists():
                break
            n += 1
        self.best: dict[str, float] = {}
        self._write([event(wall_time=now, file_version=b"brain.Event:2")])
        if purge_step is not None:
            # SessionLog {status = 1: START}: TensorBoard drops this run's events at or after the step
            self._write([event(wall_time=now, step=purge_step, session_log=_varint(1 << 3 | 0) + _varint(1))])

    def _write(self, events: list[bytes]) -> None:
        with open(self.path, "ab") as f:
            f.write(b"".join(tfrecord(e) for e in events))

    def scalars(self, step: int, values: dict[str, float], wall_time: float | None = None) -> None:
        if not values:
            return
        summary = b"".join(_field_bytes(1, scalar_value(k, v)) for k, v in values.items())
        self._write([event(wall_time=wall_time or time.time(), step=step, summary=summary)])

    def row(self, row: dict, wall_time: float | None = None) -> None:
        """One metrics.jsonl row as scalars (training rows: train/*; evaluation rows: <split>/*)."""
        prefix = str(row["split"]) if "split" in row else "train"
        values = {
            f"{prefix}/{k}": float(v)
            for k, v in row.items()
            if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if "split" in row and isinstance(row.get(BEST_KEY), (int, float)):
            best = max(self.best.get(prefix, float("-inf")), float(row[BEST_KEY]))
            self.best[prefix] = best
            values[f"{prefix}/best_{BEST_KEY}"] = best
        self.scalars(int(row.get("step") or 0), values, wall_time)

    def hparams(self, hparams: dict[str, Any], metrics: list[str], start_time: float | None = None) -> bool:
        """The hparams plugin's experiment and session-start records; False without tensorboard."""
        summaries = hparams_summaries(hparams, metrics, start_time)
        if not summaries:
            return False
        now = time.time()
        self._write([event(wall_time=now, summary=s) for s in summaries])
        return True


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config as flat `a.b` keys with number, string or bool values (None left out)."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (bool, int, float, str)):
            out[f"{prefix}{k}"] = v
    return out


def hparams_summaries(hparams: dict[str, Any], metrics: list[str], start_time: float | None) -> list[bytes]:
    """Serialized Summary protos for the hparams plugin, or [] when tensorboard is not installed."""
    try:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    except ImportError:
        return []
    ssi = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time or time.time())
    infos = []
    for k, v in hparams.items():
        if isinstance(v, bool):
            ssi.hparams[k].bool_value = v
            kind = "DATA_TYPE_BOOL"
        elif isinstance(v, (int, float)):
            ssi.hparams[k].number_value = float(v)
            kind = "DATA_TYPE_FLOAT64"
        else:
            ssi.hparams[k].string_value = str(v)
            kind = "DATA_TYPE_STRING"
        infos.append(api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(kind)))
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics]
    )

    def summary(tag: str, data: Any) -> bytes:
        content = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **data)
        smd = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
            )
        )
        return Summary(value=[Summary.Value(tag=tag, metadata=smd)]).SerializeToString()

    return [
        summary(metadata.EXPERIMENT_TAG, {"experiment": experiment}),
        summary(metadata.SESSION_START_INFO_TAG, {"session_start_info": ssi}),
    ]


def metric_tags(split: str = "val") -> list[str]:
    from engine.runs import FIGURE_KEYS

    return [f"{split}/{k}" for k in FIGURE_KEYS] + [f"{split}/best_{BEST_KEY}"]


def open_run_writer(run_dir: str | Path, config: dict, *, purge_step: int | None = None) -> EventWriter | None:
    """The live writer of a training process (events beside metrics.jsonl); None if the folder
    cannot take it (a read-only or full disk must not stop training)."""
    try:
        writer = EventWriter(run_dir, purge_step=purge_step)
        if purge_step is None:
            writer.hparams(flatten(config), metric_tags())
        return writer
    except OSError:
        return None


def export_run(run, out_dir: str | Path) -> Path:
    """metrics.jsonl of `run` as event files in OUT_DIR/<run id>/ (hparams from config.json)."""
    from engine.runs import read_json

    target = Path(out_dir) / run.id
    for old in target.glob("events.out.tfevents.*"):
        old.unlink()  # a re-export replaces, never doubles, the curves
    writer = EventWriter(target)
    config = read_json(run.config_path) or {}
    created = config.get("created") if isinstance(config.get("created"), (int, float)) else None
    writer.hparams(flatten(config.get("train") or {}), metric_tags(), created)
    for row in run.metrics():
        if "step" in row:
            writer.row(row, wall_time=row.get("t") if isinstance(row.get("t"), (int, float)) else created)
    return target


def export_runs(workspace, ref: str, out_dir: str | Path) -> list[Path]:
    """`nlq-tui runs export-tb RUN|all DIR`: event files for one run (any unique part of its id) or all."""
    from engine.errors import ConfigError
    from engine.runs import find_run, list_runs

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; give a folder for the event files (DIR)")
    runs = list_runs(workspace) if ref == "all" else [find_run(workspace, ref)]
    return [export_run(run, out) for run in runs]
