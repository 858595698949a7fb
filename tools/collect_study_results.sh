#!/usr/bin/env bash
# Copies what a study's report needs from a study folder into a results folder (e.g. docs/results/NAME):
# each configuration's result.json, curve.json and HParams events, and the study's study.json and
# baselines.json; checkpoints, exports and logs stay behind. Safe to rerun while the study runs: a
# configuration still training contributes the curve points it has reached.
#
#   tools/collect_study_results.sh studies/curves docs/results/curves
set -euo pipefail
src=${1:?usage: collect_study_results.sh STUDY_DIR RESULTS_DIR}
dst=${2:?usage: collect_study_results.sh STUDY_DIR RESULTS_DIR}
mkdir -p "$dst"
for f in study.json baselines.json; do
  [ -f "$src/$f" ] && cp "$src/$f" "$dst/$f"
done
for run in "$src"/*/; do
  name=$(basename "$run")
  [ -f "$run/entry.json" ] || continue
  have=0
  for f in result.json curve.json; do
    [ -f "$run/$f" ] && { mkdir -p "$dst/$name"; cp "$run/$f" "$dst/$name/$f"; have=1; }
  done
  if [ "$have" = 1 ] && [ -d "$run/hparams" ] && [ -f "$run/result.json" ]; then
    rm -rf "$dst/$name/hparams"; cp -r "$run/hparams" "$dst/$name/hparams"
  fi
done
echo "collected $(ls -d "$dst"/*/ 2>/dev/null | wc -l) configuration(s) into $dst"
