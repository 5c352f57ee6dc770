#!/usr/bin/env bash
# `make interop`: rscovlm's chat exports through the REAL LLaMA-Factory and ms-swift data
# pipelines, each in its own venv (created once under DIR, reused after). Not part of `make test`:
# installing both frameworks takes minutes and network access to PyPI.
#
#   benchmarks/interop/run.sh DIR RSCOVLM_PYTHON
#
# 1. prepare.py (rscovlm's venv): real DOTA/DIOR, demo and Zoom-in Chain sets exported for both
#    frameworks, rscovlm's token ids and box sizes per sample, a tiny checkpoint with rscovlm's
#    band and one with the stock Qwen2.5-VL band;
# 2. check_llamafactory.py / check_swift.py (each framework's venv): every sample loaded by the
#    framework, its ids and fed image sizes compared, under the printed settings and the defaults.
# Prints one JSON line per (framework, set, checkpoint, settings); exits non-zero when a run under
# the printed settings does not match.
set -euo pipefail
DIR=${1:?usage: run.sh DIR RSCOVLM_PYTHON}
PY=${2:?usage: run.sh DIR RSCOVLM_PYTHON}
TORCH_WHEEL=${TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"

make_venv() {  # make_venv NAME PACKAGE... : torch from the wheel, then the framework
  local venv="$DIR/venv-$1"; shift
  if [ ! -f "$venv/.installed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$TORCH_WHEEL" "$@"
    # torchvision 0.28 is the release for torch 2.13 (its CUDA build: see _stubs.py); torchaudio
    # wheels are built for another torch and cannot load here: removed (see check_llamafactory).
    "$venv/bin/pip" install -q --no-deps torchvision==0.28.0
    "$venv/bin/pip" uninstall -y -q torchaudio 2>/dev/null || true
    touch "$venv/.installed"
  fi
}
make_venv llamafactory llamafactory==0.9.5
make_venv swift ms-swift==4.6.0 qwen-vl-utils==0.0.14

"$PY" "$HERE/prepare.py" "$DIR/run"
status=0
"$DIR/venv-llamafactory/bin/python" "$HERE/check_llamafactory.py" "$DIR/run" \
  >"$DIR/llamafactory.log" 2>&1 || status=1
"$DIR/venv-swift/bin/python" "$HERE/check_swift.py" "$DIR/run" >"$DIR/swift.log" 2>&1 || status=1
grep -h '^{"framework' "$DIR/llamafactory.log" "$DIR/swift.log" || true
[ "$status" = 0 ] || echo "interop: a run under the printed settings did not match (logs in $DIR)"
exit "$status"
