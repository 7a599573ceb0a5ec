"""Reading `execrl judge` sample files: JSON lines with problem_id and one of `code` (the
whole program), `completion` (appended to the problem's starter code) or `response` (a
whole chat answer: the program is its code block, chosen by core/answers.py's rules)."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from core.problem import Problem, ProblemFormatError
from core.answers import extract_program
from executors.judge import Submission, program_from_completion


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[Submission]:
    """Every line becomes a Submission; a bad line stops everything, naming file:line."""
    problems = ProblemIndex(problems)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"samples file not found: {p}")
    submissions = []
    with p.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            submissions.append(_submission(line, problems, f"{p}:{number}"))
    if not submissions:
        raise ProblemFormatError(f"{p}: no samples")
    return submissions


class ProblemIndex:
    """Problems by execrl's id, and by the id the problem file itself wrote where that is
    unambiguous: loaders prefix ids with their source (MBPP's `task_id: 1` becomes
    `mbpp/1`, APPS's `problem_id: 5` becomes `apps-5`), but a sample file written next
    to the original data carries the file's own id."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        self.problems = problems
        aliases: dict[str, list[str]] = {}
        for pid, problem in problems.items():
            for alias in file_ids(problem):
                if alias != pid:
                    aliases.setdefault(alias, []).append(pid)
        self.aliases = aliases

    def get(self, pid: str) -> Problem | None:
        if pid in self.problems:
            return self.problems[pid]
        named = self.aliases.get(pid, [])
        return self.problems[named[0]] if len(named) == 1 else None

    def unknown_message(self, pid) -> str:
        named = self.aliases.get(str(pid), [])
        if len(named) > 1:
            return (f"problem_id {pid!r} is ambiguous: it is the file's id of {', '.join(map(repr, named[:5]))}; "
                    "use one of those")
        same = [p for p in self.problems if _loose(p) == _loose(str(pid))]
        close = same or difflib.get_close_matches(str(pid), list(self.problems), n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        return f"unknown problem_id {pid!r} (not in the problem file){hint}"


def _loose(pid: str) -> str:
    """An id with case and leading zeros of its numbers ignored ("MBPP/002" ~ "mbpp/2")."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), pid.lower())


def file_ids(problem: Problem) -> set[str]:
    """The ids the original file may have used for `problem`: execrl's id less its
    source prefix ("mbpp/1" -> "1", "apps-5" -> "5")."""
    ids = set()
    for sep in ("/", "-"):
        prefix = problem.source + sep
        if problem.id.lower().startswith(prefix.lower()) and len(problem.id) > len(prefix):
            ids.add(problem.id[len(prefix):])
    return ids


def _submission(line: str, problems: ProblemIndex, where: str) -> Submission:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProblemFormatError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ProblemFormatError(f"{where}: expected a JSON object")
    pid = record.get("problem_id", record.get("task_id"))
    if pid is None:
        raise ProblemFormatError(f"{where}: missing 'problem_id'")
    problem = problems.get(str(pid))
    if problem is None:
        raise ProblemFormatError(f"{where}: {problems.unknown_message(pid)}")
    given = [k for k in ("code", "completion", "response") if k in record]
    if len(given) > 1:
        raise ProblemFormatError(f"{where}: has {' and '.join(map(repr, given))}; give exactly one of them")
    if isinstance(record.get("code"), str):
        return Submission(problem, record["code"], "code")
    if isinstance(record.get("completion"), str):
        return Submission(problem, program_from_completion(problem, record["completion"]), "completion")
    if isinstance(record.get("response"), str):
        extracted = extract_program(record["response"], problem.entry_point)
        return Submission(problem, extracted.code, f"response:{extracted.rule}")
    raise ProblemFormatError(f"{where}: needs a string 'code' (whole program), 'completion' (appended to the "
                             f"prompt) or 'response' (a chat answer: its code block is judged)")
