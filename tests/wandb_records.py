"""Read back what an offline W&B run recorded (its run-*.wandb file), so tests check what
W&B received rather than what we meant to send.

The file is a LevelDB-style log (wandb's own `leveldb` writer): a 7-byte header, then
32 KiB blocks of chunks, each with a 7-byte header (CRC32, length, type: 1 full,
2 first, 3 middle, 4 last), each record a `wandb_internal_pb2.Record`."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path, wait_s: float = 60.0) -> list:
    """Every record, once the run's closing `exit` record is on disk: wandb-core writes
    the file in the background and finishes it after `run.finish()` has returned."""
    deadline = time.monotonic() + wait_s
    while True:
        parsed = _parse(path)
        if any(r.WhichOneof("record_type") == "exit" for r in parsed) or time.monotonic() > deadline:
            return parsed
        time.sleep(0.2)


def _parse(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, out, partial = path.read_bytes(), 7, [], b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):  # still being written
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            partial = chunk
        elif kind == MIDDLE:
            partial += chunk
        elif kind == LAST:
            out.append(partial + chunk)
    parsed = []
    for raw in out:
        record = pb.Record()
        record.ParseFromString(raw)
        parsed.append(record)
    return parsed


def run_file(wandb_dir: Path) -> Path:
    found = sorted(wandb_dir.glob("offline-run-*/run-*.wandb"))
    assert found, f"no offline W&B run under {wandb_dir}"
    return found[-1]


def history(path: Path) -> list[dict]:
    """One dict per logged row: key -> decoded JSON value."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item})
    return rows


def metric_definitions(path: Path) -> list:
    return [r.metric for r in records(path) if r.WhichOneof("record_type") == "metric"]
