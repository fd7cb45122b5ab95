"""Drive headless Chromium through chromedriver's WebDriver HTTP API (standard library only).

Run inside a test node's network namespace, where the dashboard's Service is
reachable: ``python -m tests.e2e.browser --url http://IP/ --token-file F
--node NAME --pod PREFIX --log-text TEXT --screenshot out.png``. It signs in, checks the node
and a pod appear, opens that pod's logs, and prints a JSON summary; any
failure exits non-zero with one line saying which step failed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--window-size=1280,900",
]

# Where Chromium and its WebDriver live: Debian's chromium and chromium-driver packages
# (`make deps`) give /usr/bin/chromium (a wrapper for /usr/lib/chromium/chromium) and
# /usr/bin/chromedriver; Ubuntu names them chromium-browser and chromium.chromedriver.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "/usr/lib/chromium/chromium")
DRIVERS = ("chromedriver", "chromium.chromedriver", "/usr/lib/chromium/chromedriver",
           "/usr/lib/chromium-browser/chromedriver")


def locate(candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` (names looked up on PATH, or absolute paths) that can run."""
    for name in candidates:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def find_tools() -> tuple[str, str] | None:
    """(browser, driver) paths, or None when either cannot be found."""
    browser, driver = locate(BROWSERS), locate(DRIVERS)
    return (browser, driver) if browser and driver else None


class WebDriver:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            detail = json.loads(e.read() or b"{}").get("value", {})
            raise RuntimeError(f"{method} {path}: {detail.get('error')}: "
                               f"{str(detail.get('message', '')).splitlines()[0:1]}") from None

    def s(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def start(self, browser: str, user_data_dir: str) -> None:
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser,
                                   "args": [*CHROMIUM_ARGS, f"--user-data-dir={user_data_dir}"]},
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def find(self, css: str) -> str | None:
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        return found[0][ELEMENT] if found else None

    def text(self, css: str) -> str:
        el = self.find(css)
        return str(self.s("GET", f"/element/{el}/text")) if el else ""

    def text_with(self, css: str, needle: str) -> str | None:
        """The element's text if it contains ``needle`` (for waits)."""
        text = self.text(css)
        return text if needle in text else None

    def click(self, css: str) -> None:
        el = self.find(css)
        if el is None:
            raise RuntimeError(f"no element {css}")
        self.s("POST", f"/element/{el}/click", {})

    def type(self, css: str, text: str) -> None:
        el = self.find(css)
        if el is None:
            raise RuntimeError(f"no element {css}")
        self.s("POST", f"/element/{el}/value", {"text": text})

    def screenshot(self, dest: Path) -> None:
        dest.write_bytes(base64.b64decode(self.s("GET", "/screenshot")))


def wait(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError, OSError):  # OSError: not listening yet
            last = check()
            if last:
                return last
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what} (last: {last!r})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def chromedriver() -> Iterator[WebDriver]:
    tools = find_tools()
    if tools is None:
        raise RuntimeError(f"no Chromium ({', '.join(BROWSERS)}) or chromedriver "
                           f"({', '.join(DRIVERS)}): apt-get install chromium chromium-driver")
    browser, driver_binary = tools
    port = _free_port()
    proc = subprocess.Popen([driver_binary, f"--port={port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    driver = WebDriver(port)
    profile = tempfile.mkdtemp(prefix="mk-chromium-")
    try:
        wait("chromedriver", lambda: driver.call("GET", "/status")["ready"], timeout=20)
        driver.start(browser, profile)
        yield driver
    finally:
        if driver.session:
            with contextlib.suppress(Exception):
                driver.call("DELETE", f"/session/{driver.session}")
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def run(url: str, token: str, node: str, pod: str, log_text: str,
        screenshot: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    step = "start"
    with chromedriver() as d:
        try:
            step = "open the login page"
            d.s("POST", "/url", {"url": url})
            wait("the login form", lambda: d.find("#login-token"))
            step = "a wrong token is refused"
            d.type("#login-token", "not-a-valid-token")
            d.click("#login-button")
            result["bad_token_error"] = wait("an error line", lambda: d.text("#login-error"))
            step = "sign in"
            d.s("POST", "/url", {"url": url})
            wait("the login form", lambda: d.find("#login-token"))
            d.type("#login-token", token)
            d.click("#login-button")
            result["user"] = wait("the signed-in user", lambda: d.text("#user"))
            step = "see the node"
            result["nodes"] = wait(f"node {node}", lambda: d.text_with("#nodes-table", node))
            step = "see the pods"
            d.click('button[data-view="pods"]')
            result["pods"] = wait(f"a pod {pod}*", lambda: d.text_with("#pods-table", pod))
            step = "read a pod's logs"
            links = d.s("POST", "/elements", {"using": "css selector", "value": "a.pod-link"})
            target = next(el[ELEMENT] for el in links
                          if str(d.s("GET", f"/element/{el[ELEMENT]}/text")).startswith(pod))
            d.s("POST", f"/element/{target}/click", {})
            result["logs"] = wait(f"'{log_text}' in the logs",
                                  lambda: d.text_with("#logs-text", log_text))[:500]
            step = "see the events and addons"
            d.click('button[data-view="events"]')
            result["events"] = wait("events", lambda: len(d.text("#events-table").splitlines()) > 1)
            d.click('button[data-view="addons"]')
            result["addons"] = wait("addons", lambda: d.text_with("#addons-table", "dashboard"))
            if screenshot:
                d.screenshot(screenshot)
            step = "sign out"
            d.click("#logout")
            wait("the login form again", lambda: d.find("#login-token") and d.text("#login h2"))
        except (RuntimeError, StopIteration) as e:
            if screenshot:
                with contextlib.suppress(Exception):
                    d.screenshot(screenshot)
            raise RuntimeError(f"step '{step}' failed: {e}") from None
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token-file", type=Path, required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--pod", required=True, help="a pod name prefix that must be listed")
    ap.add_argument("--log-text", required=True, help="text that pod's logs must show")
    ap.add_argument("--screenshot", type=Path)
    opts = ap.parse_args()
    try:
        result = run(opts.url, opts.token_file.read_text().strip(), opts.node, opts.pod,
                     opts.log_text, opts.screenshot)
    except RuntimeError as e:
        print(f"browser: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
