"""A real headless Chromium for the status page's tests: one per test session, loopback only.

Debian's ``chromium`` (``make browser`` installs it) driven by Playwright's async API with an
explicit executable path: nothing is downloaded at test time (../shared/docs/browser-testing.md).
The browser is the session fixture ``chromium`` (tests/conftest.py); tests that use it run on
the session's event loop (``pytest.mark.asyncio(loop_scope="session")``), the one it lives on.

``WATCHER_UI_SCREENSHOTS=DIR`` makes :func:`shoot` write a PNG of a page to DIR (the README's
pictures: ``WATCHER_UI_SCREENSHOTS=docs/ui``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/lib/chromium/chromium"
LOOPBACK_ONLY = [
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--disable-background-networking", "--disable-component-update", "--no-first-run", "--no-sandbox",
]  # fmt: skip

#: On a module of browser tests: skipped without Chromium locally, failed under CI.
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                                    reason=f"no {CHROMIUM}: `make browser` installs it (CI fails instead of skipping)")


async def launch() -> AsyncIterator[Any]:
    """A headless Chromium, closed after use."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LOOPBACK_ONLY)
        try:
            yield browser
        finally:
            await browser.close()


async def new_tab(browser: Any) -> Any:
    """A fresh page (its own cookies) that records every dialog it is shown in ``tab.dialogs``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    tab = await context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
    return tab


async def shoot(tab: Any, name: str) -> None:
    """A PNG of the page when WATCHER_UI_SCREENSHOTS names a directory (the README's pictures)."""
    where = os.environ.get("WATCHER_UI_SCREENSHOTS")
    if where:
        out = Path(where) if Path(where).is_absolute() else ROOT / where
        out.mkdir(parents=True, exist_ok=True)
        await tab.screenshot(path=str(out / f"{name}.png"))


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float, what: str,
                tail: Callable[[], str] | None = None, every: float = 0.2) -> None:  # fmt: skip
    """Poll ``condition`` (sync or async) until it holds; AssertionError after ``timeout`` seconds
    (with ``tail()``, e.g. a worker's log, to say why)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{tail()}" if tail else ""))
        await asyncio.sleep(every)
