"""Signing in, a run appearing live, and its timeline, in a real browser."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")


def test_a_key_signs_in_a_sent_event_appears_in_the_runs_list_without_a_reload_and_opens_as_a_timeline(
    browser, compass, screenshot, pages
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(compass.base + "/")
    assert browser.find_element(By.ID, "key").get_attribute("type") == "password"
    browser.find_element(By.ID, "key").send_keys("fbk_nothere_wrong")
    browser.find_element(By.CSS_SELECTOR, "form[action='/signin'] button").click()
    assert "not valid" in pages.wait_for(".problem").text
    pages.sign_in(compass)
    assert browser.find_element(By.ID, "throughput").text == "0.00"
    cookie = browser.get_cookie("flowbus_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    screenshot("overview-empty")

    browser.find_element(By.LINK_TEXT, "Runs").click()
    pages.wait_for("h1", text="Runs")
    assert browser.find_elements(By.CSS_SELECTOR, "#run-rows tr[data-run]") == []
    assert browser.find_element(By.CSS_SELECTOR, "#run-rows tr.empty-row").is_displayed()
    page = browser.find_element(By.TAG_NAME, "html")
    assert '"message_id"' in compass.curl(compass.send)  # the example curl flowbus run printed
    row = pages.wait_for("#run-rows tr.fresh[data-run]")  # a run polled in
    assert page == browser.find_element(By.TAG_NAME, "html")  # the same page: no reload
    assert "compass_company_upsert" in row.text and "succeeded" in row.text
    assert "v1" in row.text
    assert not browser.find_element(By.CSS_SELECTOR, "#run-rows tr.empty-row").is_displayed()  # "no runs yet" went
    screenshot("runs-live")

    # the overview follows too: its numbers are fetched again while it is open
    pages.nav("Overview", "Overview")
    assert browser.find_element(By.CSS_SELECTOR, "#throughput + .label").text == "runs/min · 1 run"
    page = browser.find_element(By.TAG_NAME, "html")
    compass.curl(compass.send)
    pages.wait_for("#throughput + .label", text="· 2 runs")
    assert page == browser.find_element(By.TAG_NAME, "html")
    assert browser.find_element(By.ID, "failure-rate").text == "0.0%"
    screenshot("overview-live")
    pages.nav("Runs", "Runs")
    row = browser.find_elements(By.CSS_SELECTOR, "#run-rows tr[data-run]")[-1]  # the first run

    row.find_element(By.LINK_TEXT, "compass_company_upsert").click()
    pages.wait_for("#timeline")
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline > li")
    kinds = [r.get_attribute("class").split()[1] for r in rows]
    assert kinds[:2] == ["message", "run"] and "step" in kinds
    assert "selected" in rows[1].get_attribute("class")
    assert browser.find_element(By.ID, "run-version").text == "v1"
    step = next(r for r in rows if "step" in r.get_attribute("class"))
    step.find_element(By.TAG_NAME, "summary").send_keys(Keys.ENTER)  # by keyboard: it opens to its input and output
    assert "acme.example" in pages.wait_for(f"#timeline > li:nth-child({rows.index(step) + 1}) .detail").text
    # times are shown in the viewer's zone (UTC+5:30 here), the UTC text kept as the title
    started = browser.find_element(By.CSS_SELECTOR, ".facts time")
    assert "GMT+5:30" in started.text and started.get_attribute("title").endswith("UTC")
    screenshot("timeline")

    pages.nav("Entities", "Entities")
    browser.find_element(By.LINK_TEXT, "company").click()
    browser.find_element(By.PARTIAL_LINK_TEXT, "acme.example").click()
    assert "Acme Corporation" in pages.wait_for("#record").text  # what the run upserted

    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    pages.wait_for("#key")
    browser.get(compass.base + "/p/compass/runs")
    assert browser.current_url.startswith(compass.base + "/?next=")  # signed out: back to the sign-in form
