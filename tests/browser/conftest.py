"""A real headless Chromium (Debian's chromium and chromium-driver) driving the dashboard of a
real ``flowbus run`` subprocess. Under CI=true a missing browser fails the tests; elsewhere they
skip, naming what is missing. Each test saves a screenshot under test-artifacts/dashboard/."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
VIEWER_ZONE = "Asia/Kolkata"


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1440,900"):  # fmt: skip
        options.add_argument(flag)
    # the viewer is in India (UTC+5:30, no daylight saving): pages must show their zone, not UTC
    service = Service(executable_path=str(CHROMEDRIVER), env={**os.environ, "TZ": VIEWER_ZONE})
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A ``flowbus run`` process and what it printed on first start."""

    process: subprocess.Popen[bytes]
    folder: Path
    base: str
    token: str
    send: str
    log: Path
    sink: IO[str]

    def output(self) -> str:
        return self.log.read_text()

    def curl(self, command: str) -> str:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=True)
        return done.stdout


def start(folder: Path, config: str) -> Running:
    port = free_port()
    log = folder / "run.log"
    sink = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "run", config, "--port", str(port)],
        cwd=folder, stdout=sink, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "serving http" not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    out = log.read_text()
    assert "serving http" in out, f"flowbus run did not start in 60 s:\n{out}"
    token = re.search(r"Bearer (fbk_\S+)'", out).group(1)
    send = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl -X POST"))
    # the address flowbus run prints to sign in at
    dashboard = re.search(r"open the dashboard: http://(\S+)/ and sign in with the admin key above", out)
    assert dashboard is not None and dashboard.group(1) == f"127.0.0.1:{port}", out
    return Running(process, folder, f"http://{dashboard.group(1)}", token, send, log, sink)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start ``flowbus run`` of a copy of the compass example, its config changed by ``edit``."""
    started: list[Running] = []

    def go(edit: Callable[[str], str] = lambda text: text) -> Running:
        shutil.copytree(EXAMPLES / "compass", tmp_path / "compass")
        config = tmp_path / "compass" / "flowbus.yaml"
        config.write_text(edit(config.read_text()))
        started.append(start(tmp_path, "compass/flowbus.yaml"))
        return started[-1]

    yield go
    for running in started:
        stop(running)


@pytest.fixture
def compass(launch) -> Running:
    """``flowbus run`` of a copy of the compass example."""
    return launch()


def stop(running: Running) -> None:
    running.process.send_signal(signal.SIGINT)
    code = running.process.wait(timeout=30)
    running.sink.close()
    assert code == 0, running.output()


@pytest.fixture
def screenshot(browser, request):
    """Save the page as test-artifacts/dashboard/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        browser.save_screenshot(str(path))
        return path

    return save


def wait_for(browser, css: str, *, text: str | None = None, timeout: float = 20):
    """The element at ``css`` once it is visible (and holds ``text``)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # an element found while a page is replaced by the next one may be gone before it is read:
    # Chromium then says "Node with given id does not belong to the document", not that it is
    # stale; either way, look again until the timeout
    wait = WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException, WebDriverException))
    if text is not None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


@pytest.fixture
def pages(browser):
    """What the tests do on the dashboard's pages: sign in, wait for an element."""

    class Pages:
        def wait_for(self, css: str, *, text: str | None = None, timeout: float = 20):
            return wait_for(browser, css, text=text, timeout=timeout)

        def sign_in(self, running: Running, token: str | None = None) -> None:
            from selenium.webdriver.common.by import By

            browser.delete_all_cookies()
            browser.get(running.base + "/")
            browser.find_element(By.ID, "key").send_keys(token or running.token)
            browser.find_element(By.CSS_SELECTOR, "form[action='/signin'] button").click()
            self.wait_for("h1", text="Overview")

        def nav(self, label: str, heading: str) -> None:
            from selenium.webdriver.common.by import By

            browser.find_element(By.CSS_SELECTOR, "header nav").find_element(By.LINK_TEXT, label).click()
            self.wait_for("h1", text=heading)

        def set_text(self, css: str, text: str) -> None:
            from selenium.webdriver.common.by import By

            area = browser.find_element(By.CSS_SELECTOR, css)
            browser.execute_script("arguments[0].value = arguments[1];", area, text)

    return Pages()
