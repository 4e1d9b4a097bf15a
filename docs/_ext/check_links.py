"""Check that every relative link in built HTML resolves: the file exists and, for
``page.html#anchor``, the anchor is an ``id`` (or ``name``) in that page.

Sphinx's ``linkcheck`` needs the network; this checks only links inside the docs, which is
what can break when a page, a heading or an object moves.

Usage: ``python docs/_ext/check_links.py BUILD_HTML_DIR`` (exit status 1 on broken links).
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Built files that are not pages of the docs (copied sources, search index, theme assets).
SKIP_DIRS = ("_sources", "_static", "_images", "_downloads", "_modules")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, int]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if tag in ("a", "img", "link", "script", "iframe", "source") and a.get(key):
                self.links.append((a[key], self.getpos()[0]))


def _parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8", errors="replace"))
    return c


def check(html_dir) -> list[str]:
    """Broken relative links under ``html_dir``, as ``"page:line: link (reason)"`` lines."""
    root = Path(html_dir).resolve()
    pages = [p for p in root.rglob("*.html")
             if not any(part in SKIP_DIRS for part in p.relative_to(root).parts)]
    parsed: dict[Path, _Collector] = {}

    def get(p: Path) -> _Collector:
        if p not in parsed:
            parsed[p] = _parse(p)
        return parsed[p]

    broken = []
    for page in pages:
        for link, line in get(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            if not parts.path:
                target = page
            else:
                target = (page.parent / unquote(parts.path)).resolve()
            where = f"{page.relative_to(root)}:{line}: {link}"
            if root not in target.parents and target != root:
                broken.append(f"{where} (points outside the built docs)")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{where} (no such file)")
                continue
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html" and frag not in get(target).ids:
                broken.append(f"{where} (no anchor #{frag} in {target.relative_to(root)})")
    return broken


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    html = Path(argv[0])
    if not (html / "index.html").is_file():
        print(f"{html} has no index.html: build the docs first", file=sys.stderr)
        return 2
    broken = check(html)
    n_pages = sum(1 for p in html.rglob("*.html")
                  if not any(x in SKIP_DIRS for x in p.relative_to(html).parts))
    for b in broken:
        print(b)
    print(f"checked relative links of {n_pages} pages: {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
