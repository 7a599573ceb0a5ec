"""The `execrl inspect --html` page in a real headless browser (Chromium, Debian package
`chromium`; .ci/run installs it): a screenshot that really shows the page (its size,
not blank, the masked-code and prefix colours painted), and the DOM the browser built
holding the problem's masked lines, given prefix and executed-line marks.

Without Chromium the test skips, saying so; the screenshot stays in the test's tmp_path."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.inspect_html import GIVEN_BG, MASKED_BG, NOT_RUN, RAN
from cluster.inspect_run import problem_history
from cluster.run_files import load_run
from observe_helpers import PROBLEM, judge, tokenizer, write_run  # noqa: F401 - fixtures

WIDTH, HEIGHT = 1200, 2600
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH: apt-get install chromium (.ci/run does)")
    return found


def headless(*args: str) -> subprocess.CompletedProcess:
    """Chromium without a display, GPU or sandbox (we are root in CI)."""
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class Lines(HTMLParser):
    """Per `div.line` of the DOM: its classes, its masked text, its whole source text."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self._stack: list[set[str]] = []

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        self._stack.append(classes)
        if tag == "div" and "line" in classes:
            self.lines.append({"classes": classes, "masked": "", "src": "", "number": int(dict(attrs)["data-line"])})

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if not self.lines or not any("line" in c for c in self._stack):
            return
        if any("src" in c for c in self._stack):
            self.lines[-1]["src"] += data
        if any("masked" in c for c in self._stack):
            self.lines[-1]["masked"] += data


def colour(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def page(tmp_path_factory, judge, tokenizer) -> tuple[Path, Path]:
    browser()
    run_dir = tmp_path_factory.mktemp("run")
    write_run(run_dir, judge, tokenizer)
    out = run_dir / "inspect.html"
    assert main(["inspect", str(run_dir), "--problem", PROBLEM, "--iteration", "1", "--html", str(out)]) == 0
    return run_dir, out


def test_screenshot_shows_the_page(page, tmp_path):
    """Read the picture, not the HTML: code lines are found by the colour of their left
    border (the leftmost column painted NOT_RUN or RAN is the code blocks' border)."""
    import numpy as np
    from PIL import Image

    _, html = page
    shot = tmp_path / "inspect.png"
    done = headless(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri())
    assert shot.is_file(), f"no screenshot: {done.stderr[-2000:]}"
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (HEIGHT, WIDTH, 3)
    white = np.all(image == 255, axis=2).mean()
    assert white < 0.97 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # not blank: text, tables, charts

    def painted(hex_colour):
        return np.all(image == colour(hex_colour), axis=2)

    not_run, ran, masked, given = painted(NOT_RUN), painted(RAN), painted(MASKED_BG), painted(GIVEN_BG)
    border = min(np.nonzero(not_run.any(axis=0))[0].min(), np.nonzero(ran.any(axis=0))[0].min())
    not_run_rows, ran_rows = not_run[:, border], ran[:, border]
    assert ran_rows.sum() >= 5 * 12, "too few lines marked as run"
    masked_on_dead_lines = masked[not_run_rows].sum()
    assert masked_on_dead_lines > 300, "FGO-masked code not painted on the lines no test ran"
    prefix_rows = given.sum(axis=1) > 0.6 * WIDTH  # a code line's full-width prefix background
    assert prefix_rows.sum() >= 2 * 12, "the canonical prefix's lines are not painted"


def test_the_browsers_dom_holds_the_masked_lines(page):
    run_dir, html = page
    done = headless("--dump-dom", html.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    parser = Lines()
    parser.feed(done.stdout)
    history = problem_history(load_run(run_dir), PROBLEM, until=1)
    expected = [line for shown in history.latest for line in shown.lines]
    assert len(parser.lines) == len(expected)
    for got, want in zip(parser.lines, expected):
        assert got["number"] == want.number and got["src"].rstrip(" ") == want.text.rstrip(" ")
        assert got["masked"] == "".join(s.text for s in want.segments if s.masked)
        assert ("given" in got["classes"]) == (want.origin == "prefix")
        if want.origin != "prefix":
            assert ("ran" in got["classes"]) == bool(want.ran)
    masked = [g for g in parser.lines if g["masked"].strip()]
    assert masked and all("notrun" in g["classes"] for g in masked)  # FGO masked what no test ran
    assert {"total = 0", "return total"} <= {g["masked"].strip() for g in masked}
