"""A real browser over a running dashboard: headless Chromium loads every page of the demo-like outputs,
waits for the charts, checks that no error is shown, changes one widget, checks that the chart
changes, and saves screenshots under the test's temporary folder.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package (the test extra); it skips with the reason when one is missing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium and its driver are not installed (apt-get install chromium chromium-driver)")
WAIT_S = 60
#: page -> (radio group to change, option to pick, index of the chart that must change)
CHANGES = {
    "trace": ("Colour by", "norm", 1),
    "sweep": ("x axis", "radius", 0),
    "replay": ("Histogram of", "hit counts", 1),
    "models": ("Norms", "divided by each space's median", 0),
}


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1440,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def dashboard(outputs):
    from simcache.dashboard.server import start

    board = start([outputs.report, outputs.trace_b, outputs.run_lru, outputs.run_fifo, outputs.nag_sweep])
    yield board
    board.stop()


def _settled(driver, min_charts: int) -> bool:
    """The script has finished and at least ``min_charts`` charts have drawn (non-empty canvas or svg)."""
    from selenium.webdriver.common.by import By

    if driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"):
        return False
    drawn = driver.execute_script(
        "return [...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")]"
        ".filter(e => { const c = e.querySelector('canvas, svg.marks');"
        " return c && c.getBoundingClientRect().width > 50 && c.getBoundingClientRect().height > 50; }).length")
    return drawn >= min_charts


def _wait(driver, condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition(driver):
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")


def _charts(driver) -> list[bytes]:
    from selenium.webdriver.common.by import By

    return [e.screenshot_as_png for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")]


def _errors(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException'], [data-testid='stAlertContentError']")
    return [e.text for e in found]


def _screenshot(driver, path: Path) -> None:
    """The whole page: the window is made as tall as the main area for the shot."""
    height = driver.execute_script(
        "const m = document.querySelector(\"[data-testid='stMain']\"); return m ? m.scrollHeight : 1000")
    driver.set_window_size(1440, max(1000, int(height) + 80))
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1000)
    assert path.stat().st_size > 10_000


def test_home_page_loads_without_errors(browser, dashboard, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dashboard.url)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stPageLink']") and _settled(d, 0),
          "the home page")
    assert not _errors(browser)
    assert "report/trace.arrow" in browser.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text
    _screenshot(browser, tmp_path / "home.png")


@pytest.mark.parametrize("page", list(CHANGES))
def test_page_draws_its_charts_and_a_widget_changes_them(browser, dashboard, tmp_path, page) -> None:
    from selenium.webdriver.common.by import By

    group, option, index = CHANGES[page]
    browser.get(f"{dashboard.url}/{page}")
    _wait(browser, lambda d: _settled(d, index + 1), f"the charts of the {page} page")
    assert not _errors(browser), _errors(browser)
    assert page.capitalize() in browser.find_element(By.TAG_NAME, "h1").text
    _screenshot(browser, tmp_path / f"{page}.png")
    before = _charts(browser)[index]

    xpath = (f"//div[@role='radiogroup'][@aria-label=\"{group}\"]"
             f"//label[@data-testid='stRadioOption'][.//p[normalize-space()=\"{option}\"]]")
    browser.find_element(By.XPATH, xpath).click()
    _wait(browser, lambda d: _settled(d, index + 1) and _charts(d)[index] != before,
          f"the {page} chart to change after choosing {option!r}")
    assert not _errors(browser), _errors(browser)
    _screenshot(browser, tmp_path / f"{page}-changed.png")
