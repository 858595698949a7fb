"""The static explorer (``musicvae-explorer --static=DIR``) in headless Chromium on this machine: how
big the site is, how soon the page is usable, and how long a slider move takes to give the new bar.

    python bench/static_explorer_bench.py [--export=PATH] [--site=DIR] [--moves=300] [--loads=5]

Builds the site of the shipped pretrained model (or ``--export``; ``--site`` reuses a built folder),
serves it with ``python -m http.server`` and prints, with pass/fail against the targets:

* ``site size``: every file of the folder (target <= 10 MB);
* ``first paint`` and ``usable``: from the start of navigation to the browser's first paint, and to
  the page's model loaded and the first bar decoded (``body[data-ready=1]``), over ``--loads`` fresh
  loads with an empty cache; target: usable under 3 s on every load;
* ``slider -> new bar decoded``: from a slider's input event to the decoded bar drawn and measured
  (the page's own ``performance.now()`` figures), ``--moves`` moves across the slider's range, one per
  animation frame, after 20 warm-up moves; target p99 <= 50 ms.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_string("export", None, "Export to build the site from (default: the shipped pretrained model).")
flags.DEFINE_string("site", None, "An already built site folder (skips the build).")
flags.DEFINE_integer("moves", 300, "Timed slider moves.")
flags.DEFINE_integer("loads", 5, "Timed page loads.")
FLAGS = flags.FLAGS

MAX_BYTES, MAX_USABLE_MS, MAX_P99_MS = 10 * 2 ** 20, 3000.0, 50.0

MOVES = """async ([moves, warmup]) => {
  const api = window.staticExplorer, input = document.querySelector('#sliders input[data-control="0"]');
  const low = Number(input.min), high = Number(input.max);
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  for (let i = 0; i < moves + warmup; i++) {
    if (i === warmup) api.latencies.length = 0;
    input.value = String(low + (high - low) * ((i * 37) % 101) / 100);
    input.dispatchEvent(new Event("input", {bubbles: true}));
    await frame();
  }
  return api.latencies.slice();
}"""


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv) -> None:
    del argv
    from static_browser import chromium, http_server, wait_for

    from musicvae_xai.explorer.static_site import build_site

    with tempfile.TemporaryDirectory(prefix="static-bench-") as tmp:
        site = FLAGS.site
        if not site:
            site = os.path.join(tmp, "site")
            build_site(site, FLAGS.export)
        size = sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(site) for n in names)
        results = [("site size", f"{size / 1e6:.2f} MB", size <= MAX_BYTES)]
        with chromium() as browser, http_server(site) as url:
            paints, usable = [], []
            for _ in range(FLAGS.loads):
                context = browser.new_context()  # an empty cache each time
                page = context.new_page()
                page.goto(url)
                wait_for(page, "document.body.dataset.ready === '1'", 60)
                usable.append(page.evaluate("window.staticExplorer.readyAt"))
                paints.append(page.evaluate(
                    "(performance.getEntriesByName('first-paint')[0] || {startTime: NaN}).startTime"))
                backend = page.evaluate("window.staticExplorer.backend")
                context.close()
            page = browser.new_page()
            page.goto(url)
            wait_for(page, "document.body.dataset.ready === '1'", 60)
            latencies = np.array(page.evaluate(MOVES, [FLAGS.moves, 20]))
        p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
        print(f"static explorer bench: {site} ({backend} backend, {len(latencies)} slider moves, "
              f"{FLAGS.loads} loads)")
        print(f"  first paint: median {np.median(paints):.0f} ms, max {np.max(paints):.0f} ms")
        results.append(("usable (model loaded, first bar decoded)",
                        f"median {np.median(usable):.0f} ms, max {np.max(usable):.0f} ms "
                        f"(max {np.max(np.array(usable) - np.array(paints)):.0f} ms after first paint)",
                        max(usable) < MAX_USABLE_MS))
        results.append(("slider -> new bar decoded", f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, "
                        f"max {latencies.max():.1f} ms", p99 <= MAX_P99_MS))
        for name, figure, ok in results:
            print(f"  {name}: {figure}  [{_verdict(ok)}]")
        print(f"targets: size <= 10 MB, usable < {MAX_USABLE_MS / 1000:g} s, slider p99 <= {MAX_P99_MS:g} ms: "
              f"{_verdict(all(ok for *_, ok in results))}")


if __name__ == "__main__":
    app.run(main)
