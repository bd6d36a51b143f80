"""The inspect page in a real browser (headless Chromium driven by Playwright): selecting another unit
recolours the characters, hovering shows the gates and predictions, and the page logs no console errors.

Needs the `playwright` pip package and a Chromium binary; it uses the system one (no browser download):
RNNLAB_CHROMIUM, else /usr/bin/chromium, chromium or chromium-browser on PATH. Skips with the reason otherwise.
"""

import os
import shutil

import numpy as np
import pytest

from rnnlab.viz import Recording, render_page


def chromium_path():
    for candidate in (os.environ.get("RNNLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser test")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set RNNLAB_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        except Exception as e:  # a binary Playwright cannot drive
            pytest.skip(f"Chromium at {path} did not start under Playwright: {str(e).splitlines()[0]}")
        yield b
        b.close()


def recording():
    rng = np.random.default_rng(0)
    text = "def f(x):\n    return (x + 'a')  # done\n" * 3
    T = len(text)
    q = {n: rng.uniform(0, 1, (T, 6)).astype(np.float32) for n in "ifo"}
    q["g"] = rng.uniform(-1, 1, (T, 6)).astype(np.float32)
    q["c"] = rng.normal(scale=2, size=(T, 6)).astype(np.float32)
    q["h"] = np.tanh(q["c"]) * q["o"]
    top = np.tile(np.arange(5), (T, 1))
    chars = sorted(set(text))
    return Recording(text, "lstm", {(0, 0): q, (1, 0): {k: v[::-1].copy() for k, v in q.items()}}, chars, top,
                     np.full((T, 5), 0.2, np.float32), np.full(T, 0.5, np.float32), {"model": "synthetic"})


def test_selecting_a_unit_recolours_the_text_without_console_errors(browser, tmp_path):
    path = tmp_path / "page.html"
    path.write_text(render_page(recording(), quantity="c", unit=0), encoding="utf-8")
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    colours = "els => els.map(e => getComputedStyle(e).backgroundColor)"
    first = page.eval_on_selector_all("#text span[data-t]", colours)
    assert len(first) == len(recording().text) and len(set(first)) > 10
    page.select_option("#unit", "4")
    second = page.eval_on_selector_all("#text span[data-t]", colours)
    assert sum(a != b for a, b in zip(first, second)) > len(first) // 2
    assert "unit 4" in page.text_content("#what")
    page.select_option("#quantity", "f")
    third = page.eval_on_selector_all("#text span[data-t]", colours)
    assert third != second
    page.select_option("#layer", "1")
    assert page.eval_on_selector_all("#text span[data-t]", colours) != third
    page.hover("#text span[data-t='5']")
    tip = page.text_content("#tip")
    assert "step 5" in tip and "forget gate f" in tip and "top 5" in tip
    page.click("#units tbody tr")  # a row of the interpretable-units table selects its unit
    assert "unit" in page.text_content("#what")
    assert errors == []
