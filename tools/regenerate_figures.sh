#!/usr/bin/env bash
# Regenerate the README's figures (docs/figures/*.png) and the explorer screenshot (docs/explorer.png)
# from the pretrained model shipped in the package (musicvae_xai/pretrained/, trained on the Irish
# tunes): run the analysis of the shipped export into a fresh folder, copy its PNGs into docs/figures/,
# then open the explorer with no model flags (= the shipped model) in headless Chromium and save the
# page. Run from anywhere after shipping a new model, and commit docs/figures/ and docs/explorer.png.
#
#   tools/regenerate_figures.sh [--dry-run] [--no-screenshot]
#
#   --dry-run        print the commands without running them
#   --no-screenshot  leave docs/explorer.png alone (no Chromium / Playwright here)
#
# Needs the model's dataset (irish: ../shared/datasets beside the checkout, or its cache) for the test
# measures and the training-data figure; the screenshot needs /usr/bin/chromium and Playwright.
# OUT_DIR (default runs/figures) must not exist: the figures come from a fresh analysis. The shipped
# model's evaluation figures are in musicvae_xai/pretrained/figures.json (musicvae-pretrained info).
set -euo pipefail

dry_run=0
screenshot=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --no-screenshot) screenshot=0 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $arg (use --dry-run, --no-screenshot)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
out_dir="${OUT_DIR:-runs/figures}"
python="${PYTHON:-python}"
figures=docs/figures

run() {
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

if [ -e "$out_dir" ] && [ "$dry_run" = 0 ]; then
  echo "error: $out_dir exists; remove it or set OUT_DIR to a new folder (figures come from a fresh analysis)" >&2
  exit 1
fi
run "$python" -m musicvae_xai.pretrained analysis --output_dir="$out_dir"
run rm -f "$figures"/*.png
run mkdir -p "$figures"
run cp "$out_dir"/*.png "$figures"/
if [ "$screenshot" = 1 ]; then
  run "$python" tools/explorer_screenshot.py --out=docs/explorer.png
fi
echo "figures in $figures/ (and docs/explorer.png) come from the shipped model musicvae_xai/pretrained/measure_vae_irish/1"
