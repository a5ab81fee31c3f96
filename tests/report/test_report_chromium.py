"""index.html in a real browser: headless Chromium loads it without a console error and paints
the plots. The screenshot is kept as a test artifact ($RSI_BENCH_ARTIFACTS, default
test-artifacts/ at the repository root).

Outside CI a machine without Chromium skips these tests; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.chromium

IN_CI = os.environ.get("CI", "").lower() == "true"
WIDTH, HEIGHT = 1400, 3000
# Chromium logs page console messages as "...:INFO:CONSOLE(line)] "text", source: ..."
CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|net::ERR_")


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if IN_CI:
        pytest.fail("headless Chromium is required in CI: install the chromium package")
    pytest.skip("chromium is not installed")


def artifacts_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / "test-artifacts"
    path = Path(os.environ.get("RSI_BENCH_ARTIFACTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Path, png: Path, profile: Path) -> list[str]:
    """Render ``page`` into ``png``; return the browser's console-message lines."""
    done = subprocess.run(
        [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
         "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
         f"--window-size={WIDTH},{HEIGHT}", "--enable-logging=stderr", "--v=0",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.is_file(), done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    """The negative control: a page with a script error is reported as such."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('boom'); notDefined();</script>"
                    "</body></html>")
    errors = screenshot(page, tmp_path / "broken.png", tmp_path / "profile")
    assert any("boom" in line for line in errors)
    assert any("notDefined" in line for line in errors)


def test_report_renders_in_headless_chromium(multi_report: Path, tmp_path: Path) -> None:
    png = artifacts_dir() / "report-multi.png"
    errors = screenshot(multi_report / "index.html", png, tmp_path / "profile")
    assert errors == []
    shutil.copy(multi_report / "index.html", png.with_suffix(".html"))
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
    # Below the verdict boxes and the runs table come the plots: many colours, not a blank.
    plots = rgb.crop((0, HEIGHT // 4, WIDTH, HEIGHT))
    colours = plots.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 500, f"only {len(colours)} distinct colours in the plot region"
    most_common = max(count for count, _ in colours)
    assert most_common / (plots.width * plots.height) < 0.9
