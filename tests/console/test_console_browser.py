"""The web console in a real browser: Debian's headless Chromium driven by Playwright.

Never ``playwright install`` (it downloads a browser, which cannot work here): the browser is the
``chromium`` on PATH (scripts/test installs it). Without it these tests skip, except under CI,
where they fail so that a broken setup cannot pass unnoticed.

Screenshots of the main pages land in ``test-artifacts/console/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from trentd.testing.server import TrentdServer

from ..e2e.authz_world import World

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
INVALID_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "nobody-here"'


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium; scripts/test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    with TrentdServer(dev=False, account="111122223333") as server:
        yield server


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    # Console errors (a CSP violation shows up here) and uncaught exceptions; not the status lines
    # of pages answered 4xx on purpose, nor the favicon the console does not have.
    page.errors = []
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, server, access_key: str, secret: str) -> None:
    page.goto(server.url + "/console/")
    page.get_by_label("Access key ID").fill(access_key)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/keys$"))


def test_manage_a_key_and_see_each_action_in_the_audit_trail(page, server):
    page.goto(server.url + "/console")
    page.wait_for_url(re.compile(r".*/console/signin$"))
    shot(page, "01-sign-in")
    sign_in(page, server, *server.admin_credentials())
    assert page.get_by_role("heading", name="Keys in us-east-1").is_visible()

    # Create a key (the usage list follows the chosen spec: console.js).
    page.get_by_role("link", name="Create key").first.click()
    page.get_by_label("Key spec").select_option("HMAC_256")
    assert page.get_by_label("Key usage").input_value() == "GENERATE_VERIFY_MAC"
    page.get_by_label("Key spec").select_option("SYMMETRIC_DEFAULT")
    page.get_by_label("Description").fill("made in a browser")
    alias = "browser-" + uuid.uuid4().hex[:8]
    page.get_by_label("Alias (optional)").fill(alias)
    page.get_by_label("Tags (one key=value per line)").fill("team=console")
    shot(page, "02-create-key")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url(re.compile(r".*/console/keys/[0-9a-f-]{36}\?msg=created$"))
    key_id = re.search(r"/keys/([0-9a-f-]{36})", page.url).group(1)
    assert page.get_by_role("alert").first.inner_text() == "The key was created."
    assert f"alias/{alias}" in page.content()

    # An invalid policy: the error beside the editor, the typed text kept.
    editor = page.get_by_label("Policy document (JSON)")
    editor.fill(INVALID_POLICY)
    page.get_by_role("button", name="Save policy").click()
    error = page.locator("#policy-error")
    error.wait_for()
    assert error.inner_text().startswith("MalformedPolicyDocumentException")
    assert page.get_by_label("Policy document (JSON)").input_value() == INVALID_POLICY
    assert page.get_by_label("Policy document (JSON)").get_attribute("aria-describedby") == "policy-error"
    shot(page, "03-key-policy-error")

    # Rotate now, then disable (confirmed in the dialog console.js opens).
    page.goto(f"{server.url}/console/keys/{key_id}")
    page.get_by_role("button", name="Rotate now").click()
    page.wait_for_url(re.compile(r".*msg=rotated$"))
    assert "ON_DEMAND" in page.locator("#rotations-table").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable key").click()
    page.wait_for_url(re.compile(r".*msg=disabled$"))
    assert page.locator("#key-state").inner_text() == "Disabled"
    shot(page, "04-key-detail")

    # Each action is in the audit trail, newest first.
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Key ID or ARN").fill(key_id)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*/console/audit\?key=.*"))
    names = page.locator("#audit-table td.event-name").all_inner_texts()
    for expected in ("CreateKey", "PutKeyPolicy", "RotateKeyOnDemand", "DisableKey"):
        assert expected in names, names
    assert names.index("DisableKey") < names.index("RotateKeyOnDemand") < names.index("CreateKey")
    assert "MalformedPolicyDocumentException" in page.locator("#audit-table").inner_text()
    shot(page, "05-audit")

    for name, path in (("06-keys", "/console/keys"), ("07-aliases", "/console/aliases"), ("08-tools", "/console/tools")):
        page.goto(server.url + path)
        shot(page, name)
    assert page.errors == []


def test_a_principal_without_rights_sees_the_access_denied_message(page, server):
    name = "browser-nobody-" + uuid.uuid4().hex[:6]
    user = World(server).make_users([(server.account, name, None)])[name]
    sign_in(page, server, user.access_key, user.secret)
    alert = page.get_by_role("alert").first
    assert f"User: {user.arn} is not authorized to perform: kms:ListKeys" in alert.inner_text()
    page.goto(server.url + "/console/audit")
    assert "trentd:ReadAudit" in page.get_by_role("alert").first.inner_text()
    shot(page, "09-access-denied")


def test_sign_in_with_the_keyboard_alone(page, server):
    access_key, secret = server.admin_credentials()
    page.goto(server.url + "/console/signin")
    page.locator("body").focus()

    def tab_to(element_id: str) -> None:
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    tab_to("access_key_id")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")  # focus is visible
    page.keyboard.type(access_key)
    tab_to("secret_access_key")
    page.keyboard.type(secret)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/console/keys$"))
    assert page.get_by_role("heading", name="Keys in us-east-1").is_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
