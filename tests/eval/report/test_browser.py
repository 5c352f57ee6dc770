"""The HTML report in a real headless Chromium (Debian ``chromium`` + ``chromium-driver``,
driven by Selenium): its tables and images render, nothing logs a console error, and an
injected ``<script>`` in a model output stays text. Skipped only where no browser is installed
(``make test`` installs one)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rscovlm.eval.report import load_run, write_report

from .conftest import INJECTION

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no chromium + chromedriver installed"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


def test_report_renders_in_chromium(
    browser: Any, report_runs: Callable[[], tuple[Path, Path]], tmp_path: Path
) -> None:
    run_a, run_b = report_runs()
    write_report(load_run(run_a), tmp_path, other=load_run(run_b), html=True)
    page = tmp_path / "report.html"
    browser.get(page.as_uri())
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 3
    cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "cls_aid" and float(cells[3]) > float(cells[5])  # strict > official
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare tbody tr")) == 3
    assert browser.find_elements(By.CSS_SELECTOR, "#fingerprint th")
    images = browser.find_elements(By.CSS_SELECTOR, "img.thumb")
    assert len(images) >= 10
    for img in images:
        assert browser.execute_script("return arguments[0].complete", img)
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    svgs = browser.find_elements(By.TAG_NAME, "svg")
    assert len(svgs) >= 6
    assert all(s.size["width"] > 0 and s.size["height"] > 0 for s in svgs)
    assert browser.find_elements(By.CSS_SELECTOR, "circle.pr")  # detection PR points
    # the injected output is shown as text and ran nothing
    assert browser.execute_script("return window.__pwned === undefined")
    outputs = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.output")]
    assert INJECTION in outputs
    assert not browser.find_elements(By.CSS_SELECTOR, "pre.output script, pre.output img")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
