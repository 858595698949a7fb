#!/usr/bin/env bash
# Regenerate the README's figures (docs/figures/*.png) from the model the current code trains:
# train the quickstart from scratch, print its evaluation table, run the analysis and copy its PNGs
# into docs/figures/. Run from the repository root after any change to the model, the training or the
# analysis, and commit docs/figures/ together with the README's evaluation table printed at the end.
#
#   tools/regenerate_figures.sh [--dry-run] [--deterministic]
#
#   --dry-run        print the commands without running them
#   --deterministic  train with --deterministic (TF op determinism; see the README's "Reproducibility")
#
# RUN_DIR (default runs/figures) must not hold a run already: the figures come from a fresh training,
# never from a resumed or older one. About 5 minutes on a 2-core CPU (the quickstart's timing).
set -euo pipefail

dry_run=0
extra=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --deterministic) extra+=("--deterministic") ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $arg (use --dry-run, --deterministic)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
run_dir="${RUN_DIR:-runs/figures}"
python="${PYTHON:-python}"
figures=docs/figures

run() {
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

if [ -e "$run_dir" ] && [ "$dry_run" = 0 ]; then
  echo "error: $run_dir exists; remove it or set RUN_DIR to a new folder (figures come from a fresh run)" >&2
  exit 1
fi
run "$python" -m musicvae_xai.train --config=quickstart --run_dir="$run_dir" ${extra[@]+"${extra[@]}"}
run "$python" -m musicvae_xai.evaluate --run_dir="$run_dir"
run "$python" -m musicvae_xai.analysis --run_dir="$run_dir" --output_dir="$run_dir/analysis"
run rm -f "$figures"/*.png
run mkdir -p "$figures"
run cp "$run_dir"/analysis/*.png "$figures"/
echo "figures in $figures/ come from $run_dir; update the README's evaluation table from $run_dir/evaluation_test.json"
