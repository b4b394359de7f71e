"""The events page's dry run and the queues page, in a real browser."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")


def test_the_dry_run_form_answers_which_flow_a_payload_would_run_and_the_queues_page_shows_each_queue(
    browser, compass, pages, screenshot
):
    from selenium.webdriver.common.by import By

    pages.sign_in(compass)
    pages.nav("Events", "Events")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Would it match?").click()
    pages.wait_for("#match-form")
    browser.find_element(By.NAME, "source").send_keys("compass_inbound")
    pages.set_text("#payload", '{"event": "upsert_company", "payload": {"domain": "d.example"}}')
    browser.find_element(By.CSS_SELECTOR, "#match-form button").click()
    answer = pages.wait_for("#answer")
    assert "matches" in answer.text and "flow compass_company_upsert" in answer.text
    assert browser.find_element(By.TAG_NAME, "h2").text == "compass_inbound / upsert_company"
    screenshot("would-match")

    pages.set_text("#payload", '{"event": "delete_company"}')
    browser.find_element(By.CSS_SELECTOR, "#match-form button").click()
    answer = pages.wait_for("#answer", text="near miss")
    assert "it runs for event type 'upsert_company', not 'delete_company'" in answer.text
    screenshot("near-miss")

    pages.nav("Queues", "Queues")
    rows = [r.text.split()[0] for r in browser.find_elements(By.CSS_SELECTOR, "#queues tbody tr")]
    assert rows == ["inbound", "outbound"]
    assert "No FIFO group has open messages" in browser.find_element(By.TAG_NAME, "main").text
    screenshot("queues")
