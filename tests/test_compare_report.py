"""The HTML report in a real headless browser: it opens from disk, without a server or network, logs no
console error, shows the table and decodes every embedded figure."""

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from replay_cli.compare.report import REPORT_FILE

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)

# Added to a copy of the report (the report itself has no script): counts images the browser decoded.
PROBE = (
    "<script>window.addEventListener('load', () => {"
    " const images = [...document.images];"
    " const decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;"
    " document.body.dataset.decoded = decoded + '/' + images.length;"
    " console.log('probe: ' + decoded + '/' + images.length); });</script>"
)


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args, page.as_uri()], capture_output=True, text=True, timeout=90
    )


def _console(stderr: str) -> list[str]:
    """What the page wrote to the console, and any resource it failed to load."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Failed to load resource" in line]


def test_report_opens_from_disk_with_table_and_figures(compared_sweep, tmp_path):
    sweep, printed = compared_sweep
    report = sweep / "compare" / REPORT_FILE
    text = report.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    page = tmp_path / "probed.html"  # a copy elsewhere: nothing may be read from beside the report
    page.write_text(text.replace("</body>", PROBE + "</body>"))

    loaded = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert [line for line in _console(loaded.stderr) if '"probe: ' not in line] == []
    figures = text.count("<img ")  # the accuracy, forgetting, cost and buffer figures
    assert figures >= 4
    assert f'"probe: {figures}/{figures}"' in loaded.stderr  # the console is really captured
    assert f'data-decoded="{figures}/{figures}"' in loaded.stdout
    table = re.search(r'<table[^>]* id="results">.*?</table>', loaded.stdout, re.S).group(0)
    html_rows = re.findall(r"<tr[^>]*>.*?</tr>", table, re.S)
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in html_rows]
    assert rows[0][:3] == ["storage", "mem_size", "n"]
    assert rows[0][3] == "final_average_accuracy (average over experiences)"
    assert len(rows) == 1 + len(printed["rows"])
    best = printed["rows"][0]
    accuracy = f"{best['final_average_accuracy_mean']:.3f} ± {best['final_average_accuracy_std']:.3f}"
    assert rows[1][:4] == [best["storage"], str(best["mem_size"]), "2", accuracy]

    shot = tmp_path / "shot.png"
    shown = _chromium(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1600")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert _console(shown.stderr) == []
    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        assert max(ImageStat.Stat(image.convert("L")).stddev) > 20  # text and figures, not a blank page
