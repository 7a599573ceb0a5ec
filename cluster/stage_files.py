"""Stage files of the offline pipelines (CYCLE's collection and data, CodeDPO's samples,
matrix, scores, timings and pairs): JSON lines for the records, a JSON summary with the
settings that made them.  A stage whose summary exists is kept when its settings match
the ones asked now and refused (naming the file) when they do not, so a rerun resumes
and never mixes runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable


def kept(path: Path, settings: dict) -> bool:
    """True when `path` exists with these settings; a ValueError when with others."""
    if not path.is_file():
        return False
    saved = json.loads(path.read_text()).get("settings")
    if saved != json.loads(json.dumps(settings)):
        raise ValueError(f"{path} was made with other settings ({_diff(saved, settings)}); delete it or use "
                         f"another --out")
    return True


def keep_or_write(path: Path, settings: dict) -> None:
    """A summary holding only the settings, written unless one with them is kept."""
    if not kept(path, settings):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": settings}, indent=2) + "\n")


def write_stage(summary: Path, settings: dict, rows: Iterable[dict] | None = None, /, **figures) -> None:
    """The records (summary's .jsonl sibling) first, then the summary: a crash between
    the two leaves no summary, so the stage is redone."""
    summary.parent.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        summary.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary.write_text(json.dumps({"settings": settings, **figures}, indent=2) + "\n")


def read_rows(summary: Path) -> list[dict]:
    return [json.loads(line) for line in summary.with_suffix(".jsonl").read_text().splitlines()]


def read_summary(summary: Path) -> dict:
    return json.loads(summary.read_text())


def _diff(saved, wanted) -> str:
    if not isinstance(saved, dict):
        return "no settings recorded"
    wanted = json.loads(json.dumps(wanted))
    keys = [k for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    return ", ".join(f"{k}: saved {saved.get(k)!r}, wanted {wanted.get(k)!r}" for k in keys[:3])
