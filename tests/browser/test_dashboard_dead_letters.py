"""A failing message dead-lettered, the config fixed and published, the message redriven: all
from the dashboard, in a real browser."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")

FAILING_STEP = "      - {id: not_yet, action: fail, message: \"='no CRM for ' + data.payload.domain\"}\n"
RETRY = "    retry: {max_attempts: 2, backoff_s: 0.1}\n"


def failing(text: str) -> str:
    """The compass example with a flow that fails every attempt (two of them)."""
    return text.replace("    steps:\n", RETRY + "    steps:\n" + FAILING_STEP, 1)


def test_a_message_failing_until_dead_lettered_is_redriven_from_the_page_after_the_config_is_fixed(
    browser, launch, pages, screenshot
):
    from selenium.webdriver.common.by import By

    running = launch(failing)
    text = (running.folder / "compass" / "flowbus.yaml").read_text()
    pages.sign_in(running)
    running.curl(running.send)
    pages.nav("Dead letters", "Dead letters")
    deadline = time.monotonic() + 30
    while not browser.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message]"):
        assert time.monotonic() < deadline, "the failing message was not dead-lettered in 30 s"
        time.sleep(0.3)
        browser.refresh()
    row = browser.find_element(By.CSS_SELECTOR, "#dead-letters tr[data-message]")
    assert "no CRM for acme.example" in row.text and "compass_inbound" in row.text and "v1" in row.text
    screenshot("dead-letter-listed")

    row.find_element(By.CSS_SELECTOR, "a[href*='/dead-letters/']").click()
    attempts = pages.wait_for("#attempts")
    assert [r.text.split()[0] for r in attempts.find_elements(By.CSS_SELECTOR, "tbody tr")] == ["1", "2"]
    assert attempts.text.count("no CRM for acme.example") == 2 and attempts.text.count("v1") == 2

    # fix the config: drop the failing step, then save and publish it as v2
    pages.nav("Config", "Config")
    pages.set_text("#draft-text", text.replace(FAILING_STEP, ""))
    browser.find_element(By.CSS_SELECTOR, "button[value='publish']").click()
    assert "Published version v2" in pages.wait_for(".notice").text

    pages.nav("Dead letters", "Dead letters")
    browser.find_element(By.CSS_SELECTOR, "#dead-letters input[name='ids']").click()
    browser.find_element(By.CSS_SELECTOR, "button[value='dry']").click()
    dry = pages.wait_for("#dry-run")
    assert "flow compass_company_upsert" in dry.text and "v2" in dry.text
    screenshot("redrive-dry-run")
    browser.find_element(By.CSS_SELECTOR, "button[value='redrive']").click()
    assert "Redrove 1 dead letter" in pages.wait_for(".notice").text
    assert browser.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message]") == []

    pages.nav("Runs", "Runs")
    deadline = time.monotonic() + 20
    while "succeeded" not in browser.find_element(By.ID, "run-rows").text:
        assert time.monotonic() < deadline, "the redriven message did not run in 20 s"
        time.sleep(0.3)
    newest = browser.find_elements(By.CSS_SELECTOR, "#run-rows tr[data-run]")
    assert "succeeded" in newest[0].text and "v2" in newest[0].text
    assert [r.text.count("failed") for r in newest[1:]] == [1, 1]  # the two failed attempts, on v1
    screenshot("redriven-run")
