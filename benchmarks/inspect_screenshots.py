"""Screenshots of an `rnnlab inspect` page for docs/INSPECT.md, taken with headless Chromium (Playwright).

    python benchmarks/inspect_screenshots.py PAGE.html OUT_DIR [--unit-feature in_brackets]

Writes inspect_text.png (the coloured text with a hover box, the first view: the most interpretable unit),
inspect_brackets.png (the unit that best tracks the given feature) and inspect_saturation.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page")
    ap.add_argument("out")
    ap.add_argument("--unit-feature", default="in_brackets")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--hover", type=int, default=120, help="the character hovered in the first shot")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1100, "height": 720})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(Path(args.page).resolve().as_uri())
        page.hover(f"#text span[data-t='{args.hover}']")
        page.screenshot(path=str(out / "inspect_text.png"))
        page.mouse.move(1090, 5)
        page.click(f"#units tbody tr:has(td:text-is('{args.unit_feature}'))")
        page.screenshot(path=str(out / "inspect_brackets.png"))
        page.locator("#saturation").screenshot(path=str(out / "inspect_saturation.png"))
        b.close()
    if errors:
        print("console errors:", errors, file=sys.stderr)
        return 1
    print(f"wrote inspect_text.png, inspect_brackets.png, inspect_saturation.png to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
