#!/usr/bin/env bash
# nbval over the notebooks with PyTorch's CPU capability forced down (default: AVX2, as on an AMD Zen 3),
# in a scratch copy of the working tree with its own caches, runs and results: training takes another
# floating-point path there, and every checked cell must still pass. A change that breaks another CPU
# kind fails here first, whatever CPU runs the suite.
#   tools/nbval_forced_capability.sh [avx2|default]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
capability="${1:-avx2}"
case "$capability" in
  avx2) forced=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2) ;;
  default) forced=(ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2) ;;
  *) echo "unknown capability '$capability' (avx2 or default)" >&2; exit 2 ;;
esac
if [ "$capability" = avx2 ] && ! grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  # an AVX2-only CPU (e.g. AMD Zen 2/3): its own nbval run above already took the AVX2 path
  echo "nbval-avx2: this CPU has no AVX-512, so the native nbval run was the AVX2 path; not repeated"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/repo/results"
(cd "$root" && git ls-files -co --exclude-standard | grep -v '^results/' | tar -cf - -T -) | tar -xf - -C "$work/repo"
ln -s "$(cd "$root/.." && pwd)/shared" "$work/shared"   # data.root defaults to ../shared/data beside the checkout
cd "$work/repo"
echo "nbval with ${forced[*]} in $work/repo"
# PYTHONPATH: the notebook kernels import this copy's package, so runs and caches stay inside the copy
env "${forced[@]}" PYTHONPATH="$work/repo" MTA4DPR_PROFILE=smoke MTA4DPR_PROGRESS=0 "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider \
  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks
