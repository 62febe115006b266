#!/usr/bin/env python3
"""Photographs the console's pages for docs/console.md (docs/console/*.png).

It runs the browser test (tests/web/test_browser.py: a real Chromium over a whole platform on
free ports) with ``TARSUS_SCREENSHOTS`` set, so the pages are photographed as that session
reaches them, with real data, at 1280x800 (``NAME.png``) and at phone width, 390x844
(``NAME-phone.png``); then shrinks each to a palette of at most 256 colours (Pillow), which
keeps the text sharp at a fraction of the size, and writes them to ``--out``.

    .venv/bin/python scripts/screenshots.py              # into docs/console/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots

Needs what the browser test needs (scripts/setup installs it: Chromium and Playwright). A page
whose step did not run (its part of the console not there yet) has no photograph; the pages
missing are listed, and the exit status is 1 when the test failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
#: the pages docs/console.md shows, in its order
PAGES = (
    "login", "services", "deploy", "server", "publish", "task", "config-diff", "charts",
    "nodes", "add-node", "users", "audit", "refused", "menu",
)  # fmt: skip


def shrink(src: Path, dst: Path) -> tuple[int, int]:
    """``src`` as a palette PNG (at most 256 colours, optimised) at ``dst``; both sizes."""
    with Image.open(src) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(dst, optimize=True)
    return src.stat().st_size, dst.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tarsus-shots-") as tmp:
        env = {**os.environ, "TARSUS_SCREENSHOTS": tmp}
        test = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        done = subprocess.run([*test, "tests/web/test_browser.py"], cwd=ROOT, env=env)
        before = after = 0
        for shot in sorted(Path(tmp).glob("*.png")):
            raw, small = shrink(shot, args.out / shot.name)
            before, after = before + raw, after + small
        taken = {p.stem.removesuffix("-phone") for p in Path(tmp).glob("*.png")}
    print(f"{args.out}: {before // 1024} kB taken, {after // 1024} kB written")
    missing = [p for p in PAGES if p not in taken]
    if missing:
        print(f"not photographed (their steps did not run): {', '.join(missing)}")
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
