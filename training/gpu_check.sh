#!/usr/bin/env bash
# GPU check (issue 12): paper-scale G2SWeakly (random DINOv2 ViT-B/14) and CCVPE (when this checkout has it) for a
# fixed number of AMP steps on a small synthetic set; prints steps/s, inference pairs/s, peak GPU memory, FFT vs
# direct correlation on the GPU, and a 2-process torchrun when two GPUs exist. At most 5 minutes (LIMIT seconds).
#
#   bash training/gpu_check.sh prepare   # on a development machine (with .venv): the synthetic set, 8 panoramas
#                                        # 640x320 + 512-px tiles, into .gpu_check/data (git-ignored, 2 MiB)
#   bash training/gpu_check.sh           # on the CUDA machine, with its own python3; figures in .gpu_check/
#
# The CUDA machine has Python 3.12 with torch, timm and safetensors and cannot install from a registry. Wheels of
# any other module the check needs go in .whl/ (git-ignored, carried with the working tree); they are unpacked
# into a temporary folder on PYTHONPATH. Without .gpu_check/data the set is generated on the spot, which needs the
# generator's modules (opencv among them). Without a CUDA device the check stops at once with exit status 3 (4: no
# torch or another module missing).
#
# Environment: PYTHON (default python3), LIMIT (seconds, default 300), GPU_CHECK_DATA (default .gpu_check/data),
# OUT (folder of gpu_check.json, default .gpu_check). Extra arguments go to training/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
LIMIT=${LIMIT:-300}
DATA=$(realpath -m "${GPU_CHECK_DATA:-.gpu_check/data}")
OUT=${OUT:-.gpu_check}

synth() {  # PYTHON : the check's synthetic set (hard tier, paper sizes)
    "$1" -m geodistill synth --out "$DATA" --cities NewYork --panos 8 --pano-size 640x320 --tile-size 512 \
        --tier hard --seed 0 --workers 2 --no-progress
}

if [[ "${1:-}" == prepare ]]; then
    synth "${PREPARE_PYTHON:-.venv/bin/python}"
    exit 0
fi

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "error: $PYTHON cannot import torch (set PYTHON to an interpreter that has it). Nothing was run." >&2
    exit 4
fi
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"; then
    "$PYTHON" -c "import torch; print(f'error: gpu_check needs a CUDA GPU, and torch {torch.__version__} sees none', \
        '(torch.cuda.is_available() is False). Nothing was run.')" >&2
    exit 3
fi

shopt -s nullglob
wheels=(.whl/*.whl)
if (( ${#wheels[@]} )); then
    site=$(mktemp -d -t gpu_check_wheels.XXXXXX)
    trap 'rm -rf "$site"' EXIT
    for wheel in "${wheels[@]}"; do
        "$PYTHON" -m zipfile -e "$wheel" "$site"
    done
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "gpu_check: ${#wheels[@]} wheel(s) from .whl/ on PYTHONPATH"
fi

if [[ ! -f "$DATA/synthetic_dataset.json" ]]; then
    echo "gpu_check: no synthetic set at $DATA; generating it here"
    synth "$PYTHON" || { echo "error: cannot generate the synthetic set here; run 'bash training/gpu_check.sh prepare'" \
        "on a development machine and bring .gpu_check/ along" >&2; exit 4; }
fi

mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
exec timeout --foreground "$LIMIT" "$PYTHON" training/gpu_check.py --data "$DATA" --json "$OUT/gpu_check.json" "$@"
