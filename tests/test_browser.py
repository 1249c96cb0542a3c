"""The built HTML book in a real browser: headless Chromium at desktop and at phone width.

The book is built from the stored outputs (as in ``tests/test_book.py``), served on
127.0.0.1 by ``http.server`` in a thread, and every HTML page of the build (of the
highlighted sources in ``_modules/``, the index only) is opened twice, as a first-time
visitor: at 1366 x 900 ("desktop") and at 390 x 844 ("phone": mobile, touch). The browser is
Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` and ``make test`` install
it), driven by Playwright's Python API with ``executable_path``: Playwright's own browser
download is never used. ``SNNLAB_CHROMIUM`` names another browser binary;
``SNNLAB_BOOK_HTML`` names an existing build (say ``_build/html`` after ``make book``) to
test instead of building one.

The tests are offline on purpose: every request that does not go to 127.0.0.1 is aborted
by the browser, so the result is the same with or without internet. Content from CDNs
(MathJax, the widget manager) is therefore never checked here; ``test_cdn_requests`` lists
what was not loaded in its skip reason. What is asserted, on every page:

* no local request fails (no missing file, no HTTP error);
* no console error or uncaught exception comes from the book's own files;
* every image loads and has a non-zero size;
* at 1366 px no code cell, printed output or code block is wider than its column, and
  at 390 px no page scrolls sideways (wide content scrolls inside its own box);
* the API reference (``book/api/``) documents every ``snnlab`` module and the chapters
  link library names to it.
"""

from __future__ import annotations

import functools
import http.server
import os
import pkgutil
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Generated folders of a Sphinx build that hold no pages of ours.
NOT_PAGES = ("_static", "_sources", "_images")


# ------------------------------------------------------------------ build, serve, browser


def _chromium_path() -> str | None:
    """The Chromium binary to drive: $SNNLAB_CHROMIUM, else Debian's ``chromium`` on PATH."""
    if os.environ.get("SNNLAB_CHROMIUM"):
        return os.environ["SNNLAB_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _missing_browser(reason: str):
    """Skip on a developer's machine, fail in CI (where .ci/run installs the browser)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: see .ci/run)")
    pytest.skip(reason)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would flood the test output
        pass


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    if os.environ.get("SNNLAB_BOOK_HTML"):
        html = Path(os.environ["SNNLAB_BOOK_HTML"]).resolve()
        assert (html / "index.html").is_file(), f"SNNLAB_BOOK_HTML={html} holds no index.html"
        return html
    # the session's one build (tests/conftest.py): warnings are test_book.py's business,
    # here only the pages matter
    book_build = request.getfixturevalue("book_build")
    html = book_build.html
    assert (html / "index.html").is_file(), f"jupyter-book wrote no index.html:\n{book_build.log}"
    return html


@pytest.fixture(scope="module")
def base_url(html_dir):
    """Serve ``html_dir`` on 127.0.0.1 (a free port) while the module's tests run."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _pages(html_dir: Path) -> list[str]:
    """Every HTML page of the build, as paths relative to its root ('book/intro.html').

    Of the highlighted sources (``_modules/``, one per module, all from one template) only
    the index is opened: the others add minutes, not checks.
    """
    pages = [p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")]
    return sorted(p for p in pages if not p.startswith(NOT_PAGES)
                  and (not p.startswith("_modules/") or p == "_modules/index.html"))


# ------------------------------------------------------------------ what one page shows

# Runs in the page: make lazy images load, wait for every image, then measure.
MEASURE_JS = """
async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done);
    setTimeout(done, 10000);
  })));
  const kind = el => el.closest(".cell_input") ? "code cell"
                   : el.closest(".cell_output") ? "output" : "code block";
  const firstLine = el => el.textContent.trim().split("\\n")[0].slice(0, 70);
  const article = document.querySelector("article.bd-article") || document.body;
  const column = article.getBoundingClientRect();
  return {
    images: images.map(img => ({
      src: img.getAttribute("src"), complete: img.complete,
      width: img.naturalWidth, height: img.naturalHeight})),
    blocks: [...article.querySelectorAll("pre")].filter(pre => pre.offsetParent !== null).map(pre => ({
      kind: kind(pre), text: firstLine(pre),
      scroll: pre.scrollWidth, client: pre.clientWidth,
      right: Math.round(pre.getBoundingClientRect().right)})),
    columnRight: Math.round(column.right),
    pageWidth: document.documentElement.scrollWidth,
    viewWidth: window.innerWidth,
  };
}
"""


@dataclass
class PageVisit:
    """What one page did in the browser at one width."""

    page: str
    width: str
    failed_local: list[str] = field(default_factory=list)     # "url: why"
    external: list[str] = field(default_factory=list)          # URLs the test aborted
    errors: list[str] = field(default_factory=list)            # console errors and exceptions of ours
    measures: dict = field(default_factory=dict)               # MEASURE_JS's result


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in (HOST, None) or url.startswith(("data:", "blob:", "about:"))


def _visit(context, base_url: str, page_path: str, width: str, redirects: bool = False) -> PageVisit:
    visit = PageVisit(page_path, width)
    page = context.new_page()

    def on_request(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            visit.external.append(route.request.url)
            route.abort("internetdisconnected")

    def on_console(message):
        source = message.location.get("url", "") if message.location else ""
        if message.type == "error" and _is_local(source) and not _blocked_load(message.text):
            visit.errors.append(f"console: {message.text} ({_short(source)})")

    page.route("**/*", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: visit.errors.append(f"exception: {error}"))
    page.on("requestfailed", lambda request: _is_local(request.url) and visit.failed_local.append(
        f"{_short(request.url)}: {request.failure}"))
    page.on("response", lambda response: _is_local(response.url) and response.status >= 400
            and visit.failed_local.append(f"{_short(response.url)}: HTTP {response.status}"))
    url = base_url + page_path
    page.goto(url, wait_until="load")
    if redirects:  # index.html: measure the page it sends the reader to
        page.wait_for_url(lambda now: now != url, wait_until="load")
    visit.measures = page.evaluate(MEASURE_JS)
    page.close()
    return visit


def _redirects(path: Path) -> bool:
    """Whether the page is a meta-refresh redirect (Jupyter Book's root index.html)."""
    return re.search(r'http-equiv="refresh"', path.read_text(encoding="utf-8"), re.IGNORECASE) is not None


def _blocked_load(text: str) -> bool:
    """The console line Chromium writes for a request this test aborted (a CDN file)."""
    return text.startswith("Failed to load resource: net::ERR_INTERNET_DISCONNECTED")


def _short(url: str) -> str:
    parts = urlsplit(url)
    return parts.path if parts.hostname == HOST else url


@pytest.fixture(scope="module")
def visits(html_dir, base_url) -> list[PageVisit]:
    """Open every page at both widths; one browser for the whole module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing_browser("Playwright is not installed (pip install -r requirements.txt)")
    chromium = _chromium_path()
    if chromium is None:
        _missing_browser("no Chromium binary found (Debian: apt-get install chromium)")
    pages = _pages(html_dir)
    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        for width, options in VIEWPORTS.items():
            context = browser.new_context(**options)
            # every page as a first-time visitor: nothing stored by the pages opened before it
            context.add_init_script("window.localStorage.clear(); window.sessionStorage.clear();")
            found += [_visit(context, base_url, page, width, _redirects(html_dir / page)) for page in pages]
            context.close()
        browser.close()
    return found


def _report(problems: dict[str, list[str]]) -> str:
    """One line per distinct problem, with the pages that show it (the first three)."""
    where_seen: dict[str, list[str]] = {}
    for where, items in problems.items():
        for item in items:
            where_seen.setdefault(item, []).append(where)
    lines = []
    for item, places in where_seen.items():
        more = f" and {len(places) - 3} more" if len(places) > 3 else ""
        lines.append(f"- {item}\n    on {', '.join(places[:3])}{more}")
    return "\n".join(lines)


def _collect(visits, find) -> dict[str, list[str]]:
    """``{"page @ width": problems}`` for the visits where ``find(visit)`` found any."""
    problems = {f"{v.page} @ {v.width}": find(v) for v in visits}
    return {where: items for where, items in problems.items() if items}


def _is_book_page(page: str) -> bool:
    """Pages we write (the toc's pages, the API pages); not Sphinx's generated source views."""
    return not page.startswith("_modules/")


# ------------------------------------------------------------------ the checks


def test_every_page_was_opened(visits, html_dir):
    opened = {v.page for v in visits}
    assert {"index.html", "book/intro.html", "book/bibliography.html"} <= opened
    chapters = {f"book/{nb.stem}.html" for nb in (ROOT / "book").glob("*.ipynb")}
    assert chapters <= opened, f"chapters missing from the build: {sorted(chapters - opened)}"


def test_no_local_request_fails(visits):
    problems = _collect(visits, lambda v: sorted(set(v.failed_local)))
    assert not problems, f"files the pages asked for and did not get:\n{_report(problems)}"


def test_no_console_errors_from_our_pages(visits):
    problems = _collect(visits, lambda v: sorted(set(v.errors)))
    assert not problems, (
        "console errors and uncaught exceptions (requests to CDNs were aborted on purpose; "
        f"the errors they cause are not counted):\n{_report(problems)}"
    )


def test_every_image_loads_with_a_size(visits):
    def broken(visit):
        return sorted({f"{img['src']} ({img['width']}x{img['height']})" for img in visit.measures["images"]
                       if not img["complete"] or img["width"] == 0 or img["height"] == 0})

    problems = _collect(visits, broken)
    assert not problems, f"images that did not load or have no size:\n{_report(problems)}"


def test_code_fits_the_column_on_desktop(visits):
    """At 1366 px no code cell, printed output or code block scrolls sideways."""
    def too_wide(visit):
        m = visit.measures
        return [f"{b['kind']} {b['scroll']} px in {b['client']} px: {b['text']!r}" for b in m["blocks"]
                if b["scroll"] > b["client"] + 1 or b["right"] > m["columnRight"] + 1]

    desktop = [v for v in visits if v.width == "desktop" and _is_book_page(v.page)]
    problems = _collect(desktop, too_wide)
    counts = ", ".join(f"{where.split(' @ ')[0]} {len(items)}" for where, items in problems.items())
    assert not problems, f"code blocks wider than their column at 1366 px ({counts}):\n{_report(problems)}"


def test_no_page_scrolls_sideways_on_a_phone(visits):
    phone = [v for v in visits if v.width == "phone"]
    problems = _collect(phone, lambda v: [f"{v.measures['pageWidth']} px wide in a {v.measures['viewWidth']} px window"]
                        if v.measures["pageWidth"] > v.measures["viewWidth"] else [])
    assert not problems, f"pages that scroll sideways on a phone:\n{_report(problems)}"


def test_cdn_requests(visits):
    """Not a check: say which CDN files the offline test did not load (MathJax, widgets)."""
    hosts = sorted({urlsplit(url).hostname for v in visits for url in v.external})
    if hosts:
        pages = len({v.page for v in visits if v.external})
        pytest.skip(f"offline by design: {pages} pages asked {', '.join(hosts)}; "
                    "those requests were aborted, so maths and widgets are not rendered here")


# ------------------------------------------------------------------ the API reference


def _modules() -> list[str]:
    import snnlab

    return sorted(f"snnlab.{m.name}" for m in pkgutil.iter_modules(snnlab.__path__) if not m.name.startswith("_"))


def _api_dir(html_dir: Path) -> Path:
    api = html_dir / "book" / "api"
    if not api.is_dir():
        pytest.xfail("no book/api/ pages in this build yet (issue 10: the API reference)")
    return api


def test_api_pages_document_every_module(html_dir):
    api = _api_dir(html_dir)
    text = "\n".join(p.read_text(encoding="utf-8") for p in api.glob("*.html"))
    missing = [m for m in _modules() if f'id="module-{m}"' not in text]
    assert not missing, f"modules with no API page (no module-<name> anchor in book/api/): {missing}"


def test_sidebar_links_to_the_api(html_dir):
    _api_dir(html_dir)
    intro = (html_dir / "book" / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'href="(?:\./)?api/[^"]*\.html"', intro), "the sidebar has no link to the API pages"


def test_chapters_link_library_names_to_the_api(html_dir):
    """Each chapter's text links at least one library name to its entry (``{py:func}`` etc.)."""
    _api_dir(html_dir)
    entry = re.compile(r'href="(?:\./)?api/[^"#]+\.html#snnlab\.')  # the sidebar links pages, not entries
    chapters = sorted((html_dir / "book").glob("0*.html"))
    unlinked = [p.name for p in chapters if not entry.search(p.read_text(encoding="utf-8"))]
    assert not unlinked, f"chapters whose text links no library name to the API pages: {unlinked}"
