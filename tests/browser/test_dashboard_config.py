"""The config page in a real browser: a draft's problems, publishing, a diff of two versions, rollback."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")

LOG_STEP = "      - {id: note, action: log, message: \"='upserting ' + data.payload.domain\"}\n"


def test_a_draft_shows_its_problems_two_versions_diff_by_step_and_an_old_one_is_rolled_back(
    browser, compass, pages, screenshot
):
    from selenium.webdriver.common.by import By

    pages.sign_in(compass)
    pages.nav("Config", "Config")
    routes = browser.find_element(By.ID, "routes").text
    assert "compass_inbound" in routes and "upsert_company" in routes and "compass_company_upsert" in routes
    text = browser.find_element(By.ID, "draft-text").get_attribute("value")
    assert "compass_company_upsert" in text  # no draft yet: the active version's text

    pages.set_text("#draft-text", text.replace("action: upsert", "action: upsrt"))
    browser.find_element(By.CSS_SELECTOR, "button[value='save']").click()
    problems = pages.wait_for("#problems")
    assert "error" in problems.text and "flows[0].steps[0]" in problems.text
    screenshot("draft-problems")

    changed = text.replace("    steps:\n", "    steps:\n" + LOG_STEP, 1).replace(
        "Companies as HubSpot would hold them.", "Companies, as HubSpot holds them."
    )
    pages.set_text("#draft-text", changed)
    browser.find_element(By.CSS_SELECTOR, "button[value='publish']").click()
    assert "Published version v2" in pages.wait_for(".notice").text

    browser.find_element(By.CSS_SELECTOR, "form[action$='/config/diff'] button").click()  # v1 -> v2, the default
    diff = pages.wait_for("#diff")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("v1 → v2")
    lines = [r.text for r in diff.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert any(line.startswith("changed flows compass_company_upsert") and "step note added" in line for line in lines)
    assert any(line.startswith("changed targets hubspot description") for line in lines)
    screenshot("diff")

    pages.nav("Config", "Config")
    browser.find_element(By.CSS_SELECTOR, "#versions tr[data-version='1'] button").click()
    assert "Published version v3" in pages.wait_for(".notice").text
    newest = browser.find_element(By.CSS_SELECTOR, "#versions tbody tr")
    assert newest.get_attribute("data-version") == "3" and "active" in newest.text
    assert "rollback to v1" in newest.text
    screenshot("rolled-back")
