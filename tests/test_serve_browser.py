"""End to end: headless Chromium uploads two images to the web page and reads the cards.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package (all installed by
.ci/run); skipped without them. The screenshot is kept in $SYNTHSCAN_ARTIFACTS when set,
else in the test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from synthscan.scanning import Scanner
from synthscan.serve.app import create_app
from synthscan.serve.settings import Settings
from serve_helpers import LiveServer, png

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1100"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_two_images_and_browse_history(tmp_path, tiny_model, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    images = {"first.png": png(96, 128, seed=21), "second.jpg": png(80, 80, seed=22, fmt="JPEG")}
    for name, data in images.items():
        (tmp_path / name).write_bytes(data)
    expected = {Path(r.path).name: r.verdict for r in Scanner(tiny_model).scan_paths([str(tmp_path / n) for n in images])}

    app = create_app(Settings(database=f"sqlite:///{tmp_path / 'history.db'}"), model=tiny_model)
    with LiveServer(app) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "tiny-npr" in d.find_element(By.ID, "status").text)
        browser.find_element(By.ID, "files").send_keys("\n".join(str(tmp_path / n) for n in images))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#cards article[data-verdict]")) == 2)
        cards = browser.find_elements(By.CSS_SELECTOR, "#cards article[data-verdict]")
        shown = {c.find_element(By.CSS_SELECTOR, "h2 .path").text: c.get_attribute("data-verdict") for c in cards}
        assert shown == expected
        for card in cards:
            assert card.find_element(By.CSS_SELECTOR, ".probability .marker").is_displayed()
            assert card.find_element(By.CSS_SELECTOR, "h2 .badge").text == card.get_attribute("data-verdict")
            assert card.find_element(By.CSS_SELECTOR, ".source").text.startswith("decided by pixels")

        artifacts = Path(os.environ.get("SYNTHSCAN_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(artifacts / "serve-page.png"))

        browser.find_element(By.ID, "tab-history").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) == 2)
        browser.find_element(By.CSS_SELECTOR, "#history-table tbody tr").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history-card article[data-verdict]"))

        problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert problems == []
