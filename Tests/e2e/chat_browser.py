"""A real browser on the chat page: headless Chromium from Debian, driven through its
WebDriver (chromium-driver) by Selenium. What the tests read is what a person sees:
the page's elements and their text, never the page's script state."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 800)
PHONE = (390, 844)


def browser_missing() -> str | None:
    """Why the browser cannot start here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is missing: install Debian's chromium and chromium-driver (scripts/lib/deps.sh ensure_browser)"
    return None


@dataclass
class Message:
    role: str
    state: str
    text: str
    note: str
    stored_id: str | None


class ChatPage:
    """One Chromium window on a gateway's `/`."""

    def __init__(self, base_url: str, size: tuple[int, int] = DESKTOP) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={size[0]},{size[1]}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        if size == PHONE:
            # A headless window is at least 500 px wide: a phone's viewport is emulated.
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {"width": size[0], "height": size[1], "deviceScaleFactor": 2, "mobile": True}
            )
        self.base_url = base_url

    def close(self) -> None:
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # -- looking

    def open(self) -> None:
        self.driver.get(self.base_url + "/")

    def element(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def visible(self, element_id: str) -> bool:
        found = self.driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].is_displayed()

    def text(self, element_id: str) -> str:
        return self.element(element_id).text

    def messages(self) -> list[Message]:
        try:
            return [
                Message(
                    role=node.get_attribute("data-role") or "",
                    state=node.get_attribute("data-state") or "",
                    text=node.find_element(By.CSS_SELECTOR, ".text").text,
                    note=node.find_element(By.CSS_SELECTOR, ".note").text,
                    stored_id=node.get_attribute("data-id"),
                )
                for node in self.driver.find_elements(By.CSS_SELECTOR, "#messages .message")
            ]
        except StaleElementReferenceException:
            return self.messages()

    def local_storage(self, key: str) -> str | None:
        return self.driver.execute_script("return window.localStorage.getItem(arguments[0]);", "parley." + key)

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry.get("level") == "SEVERE"]

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Polls `condition` until it is truthy; on timeout says what was on the page."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (WebDriverException, StaleElementReferenceException) as error:
                last_error = error
            time.sleep(0.05)
        raise AssertionError(
            f"the page did not show {what} within {timeout:.0f} s; "
            f"connection: {self.safe(lambda: self.text('connection'))!r}, chat error: {self.safe(lambda: self.text('chat-error'))!r}, "
            f"sign-in error: {self.safe(lambda: self.text('sign-in-error'))!r}, messages: {self.safe(self.messages)!r}, "
            f"last error: {last_error!r}, console: {self.safe(self.console_errors)!r}"
        )

    @staticmethod
    def safe(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except WebDriverException as error:
            return f"(unreadable: {error.msg})"

    def answers(self) -> list[Message]:
        return [message for message in self.messages() if message.role == "assistant"]

    def wait_connected(self, timeout: float = 15) -> None:
        self.wait(lambda: self.text("connection") == "Connected", timeout, "Connected")

    # -- doing

    def type_into(self, element_id: str, text: str) -> None:
        field = self.element(element_id)
        field.clear()
        field.send_keys(text)

    def sign_up(self, user: str, password: str) -> None:
        self.wait(lambda: self.visible("register-form"), 10, "the account forms")
        self.type_into("register-user", user)
        self.type_into("register-password", password)
        self.driver.find_element(By.CSS_SELECTOR, "#register-form button[type=submit]").click()
        self.wait(lambda: self.visible("app"), 15, "the chat after creating an account")

    def log_in(self, user: str, password: str) -> None:
        self.wait(lambda: self.visible("login-form"), 10, "the login form")
        self.type_into("login-user", user)
        self.type_into("login-password", password)
        self.driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()

    def use_token(self, token: str) -> None:
        self.wait(lambda: self.visible("token-form"), 10, "the token form")
        self.type_into("token-input", token)
        self.driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()

    def say(self, text: str) -> None:
        """Types a message and sends it with Enter, as a person at a keyboard does."""
        field = self.element("composer-input")
        field.send_keys(text)
        field.send_keys("\n")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
