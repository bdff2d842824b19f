"""A real browser for HTML output: Debian's Chromium driven by Playwright (no browser download;
`make test` installs the `chromium` package). Also run as a script to screenshot a report for
the docs: python -m tests.browser runs/x/report/report.html docs/report.png"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("Chromium is not installed: apt-get install chromium (make test does)")
    return found


@dataclass
class PageCheck:
    errors: list[str] = field(default_factory=list)  # uncaught script errors and console errors
    sections: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)  # figure -> rendered plotly SVG layers
    failed_requests: list[str] = field(default_factory=list)


@contextmanager
def _page(check: PageCheck) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda e: check.errors.append(str(e)))
            page.on("console", lambda m: check.errors.append(m.text) if m.type == "error" else None)
            yield page
        finally:
            browser.close()


def open_page(html: Path, screenshot: Path | None = None, full_page: bool = True) -> PageCheck:
    check = PageCheck()
    with _page(check) as page:
        page.on("requestfailed", lambda r: check.failed_requests.append(r.url))
        # Offline: any request leaving the file would fail, and is recorded.
        page.route("http*://**", lambda route: route.abort())
        page.goto(html.resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(500)
        check.sections = page.eval_on_selector_all("[data-section]", "els => els.map(e => e.dataset.section)")
        check.figures = dict(page.eval_on_selector_all(
            "[data-figure]", "els => els.map(e => [e.dataset.figure, e.querySelectorAll('svg.main-svg').length])"))
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=full_page)
    return check


def open_page_url(url: str, screenshot: Path, text: str) -> PageCheck:
    """A page served locally (a live dashboard): wait until `text` shows, keep errors."""
    check = PageCheck()
    with _page(check) as page:
        page.goto(url, wait_until="networkidle")
        page.get_by_text(text).first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshot))
    return check


if __name__ == "__main__":
    result = open_page(Path(sys.argv[1]), Path(sys.argv[2]), full_page=len(sys.argv) < 4)
    print(result)
