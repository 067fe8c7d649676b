#!/usr/bin/env bash
# Creates $VENV (default .venv) with the OpenMMLab stack and this package.
# Idempotent: re-running only installs what is missing.
#
# Environment:
#   PYTHON          interpreter for the venv (default python3)
#   VENV            venv folder (default .venv)
#   PIP_FIND_LINKS  extra wheel folders; a matching mmcv wheel skips the
#                   long source build of its C++ ops
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

has_cuda() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# 1. torch 2.13.0. PIP_FIND_LINKS replaces pip's configured find-links rather
# than adding to it, so torch is installed with it unset: the machine's own
# configuration (which may hold the CPU wheel) then applies.
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  if has_cuda; then
    env -u PIP_FIND_LINKS "${PIP[@]}" torch==2.13.0
  else
    # CPU machines: prefer a local CPU wheel, else PyTorch's CPU index.
    env -u PIP_FIND_LINKS "${PIP[@]}" torch==2.13.0 \
      || env -u PIP_FIND_LINKS "${PIP[@]}" torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  fi
fi

# 2. Build tools. setuptools: torch 2.13 needs >=77, while mmcv's source
# build and mmengine's config loader import pkg_resources, removed in 81.
# Then mmcv 2.1.0 with ops: mmdet 3.3 / mmdet3d 1.4 need
# mmcv<2.2. A wheel from PIP_FIND_LINKS is used when one matches; otherwise
# pip builds it against the installed torch (--no-build-isolation).
SETUPTOOLS="setuptools>=77,<81"
"${PIP[@]}" "$SETUPTOOLS" wheel ninja
if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation mmcv==2.1.0 numpy==1.26.4 torch==2.13.0 "$SETUPTOOLS"
fi

# 3. The rest of the stack; torch and mmcv are pinned again so pip never
# swaps them. spconv: CPU package without CUDA, spconv-cu120 with it
# (spconv 2.3 pins cumm<0.8 itself).
if has_cuda; then SPCONV=spconv-cu120; else SPCONV="spconv==2.3.8"; fi
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt "$SPCONV" \
  torch==2.13.0 mmcv==2.1.0 "$SETUPTOOLS"
"${PIP[@]}" --no-deps --no-build-isolation -e .

"$PY" - <<'PY'
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmdet3d, spconv, numpy
import pointdistiller_mm
print(f"stack ok: torch {torch.__version__}, mmcv {mmcv.__version__}, "
      f"mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, "
      f"mmdet3d {mmdet3d.__version__}, spconv {spconv.__version__}, numpy {numpy.__version__}")
PY
echo "setup finished in $(( $(date +%s) - start )) s"
