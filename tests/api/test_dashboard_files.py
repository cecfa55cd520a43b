"""The dashboard's page and files: served with a strict CSP, vendored files labelled, imports whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from quart import Quart

from api.app import create_app
from api.blueprints.dashboard import ROOT
from hub.runtime import Hub
from tests.api.conftest import make_settings

IMPORT = re.compile(r"""(?:import|from)\s*["']([^"']+)["']""")


@pytest.fixture
def app(tmp_path: Path) -> Quart:
    """The app over an unstarted hub: static routes need neither database nor drivers."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path)
    return create_app(Hub(settings), manage_hub=False)


async def test_page_and_modules_are_served_under_a_strict_csp(app: Quart) -> None:
    client = app.test_client()
    page = await client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "unsafe" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    body = await page.get_data(as_text=True)
    assert "<script>" not in body and "style=" not in body, "inline script or style in the page"
    module = await client.get("/ui/js/main.js")
    assert module.status_code == 200
    assert module.mimetype == "text/javascript"
    assert module.headers["Content-Security-Policy"] == csp
    for bad in ("/ui/../blueprints/dashboard.py", "/ui/%2e%2e/app.py", "/ui/nope.js"):
        assert (await client.get(bad)).status_code == 404, bad


def test_every_module_import_resolves_to_a_shipped_file() -> None:
    """A relative import that points nowhere would break the page only in a browser."""
    modules = sorted(ROOT.rglob("*.js"))
    assert len(modules) > 5
    for module in modules:
        for spec in IMPORT.findall(module.read_text(encoding="utf-8")):
            assert spec.startswith("./") or spec.startswith("../"), (module, spec)
            assert (module.parent / spec).resolve().is_file(), (module, spec)


def test_vendored_files_carry_version_and_licence() -> None:
    vendored = sorted((ROOT / "vendor").glob("*.js"))
    assert {p.name for p in vendored} >= {"preact.js", "hooks.js", "htm.js"}
    for path in vendored:
        head = path.read_text(encoding="utf-8")[:400]
        assert re.search(r"\d+\.\d+\.\d+", head), path
        assert "License" in head, path
        licence = re.search(r"full text: (\S+)", head)
        assert licence and (ROOT / "vendor" / licence.group(1)).is_file(), path


def test_no_html_injection_sinks_in_the_dashboard() -> None:
    """Values reach the DOM only as text: no innerHTML, outerHTML, insertAdjacentHTML, eval."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|dangerouslySetInnerHTML|\beval\(")
    for path in (ROOT / "js").rglob("*.js"):
        assert not sinks.search(path.read_text(encoding="utf-8")), path


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #RRGGBB colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_meet_wcag_aa_in_both_schemes() -> None:
    css = (ROOT / "app.css").read_text(encoding="utf-8")
    blocks = re.findall(r":root\s*\{([^}]*)\}", css)
    assert len(blocks) == 2, "one light and one dark palette"
    # Text colour on the backgrounds it is drawn on in the stylesheet.
    pairs = [
        ("fg", "bg"), ("fg", "card"), ("fg", "idle-bg"), ("muted", "bg"), ("muted", "card"),
        ("muted", "idle-bg"), ("accent", "card"), ("accent", "bg"), ("accent-fg", "accent"),
        ("ok", "okbg"), ("warn", "warn-bg"), ("bad", "bad-bg"), ("info", "info-bg"),
        ("ok", "card"), ("bad", "card"), ("card", "bad"),
    ]  # fmt: skip
    palette: dict[str, str] = {}
    for block in blocks:
        palette.update(dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})", block)))
        palette["okbg"] = palette["ok-bg"]
        for text, background in pairs:
            ratio = contrast(palette[text], palette[background])
            assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f} < 4.5"
    assert "opacity: 0." not in css.replace("button:disabled { opacity: 0.55", ""), (
        "opacity on text lowers its contrast"
    )
