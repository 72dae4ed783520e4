#!/usr/bin/env bash
# Reproduce the shipped models end to end on the CPU: generate the synthetic data, train the weak baseline,
# GeoDistill (teacher + student) and the orientation estimator, export fp16 checkpoints to checkpoints/ (the frozen
# backbone left to its package; with training/golden_samples.json, the student's accuracy on the bundled samples
# that tests/test_golden_samples.py holds the code to), fit and measure their calibrated confidence, and evaluate
# every model on the synthetic test splits. Every stage resumes: run the script again after an
# interruption and finished stages are skipped, an interrupted training continues from its last epoch
# (--resume), and the generator keeps the samples already on disk.
#
#   bash training/ship.sh                 # everything (wall times per stage: checkpoints/README.md)
#   STAGES="evaluate export" bash training/ship.sh   # only some stages
#
# Environment: PYTHON (default .venv/bin/python), GEODISTILL_DATA (default ./data), GEODISTILL_RUNS
# (default ./runs), RESULTS (evaluation JSON folder, default docs/results), STAGES (default: all, in order
# data weak gps orientation distill ccvpe export calibrate evaluate curves), WEAK_SEEDS (default 2026),
# TIER (default hard), SAME_EVERY (the same-area test split is evaluated on every SAME_EVERY-th query, default 8:
# 188 of its 1 500 queries; the cross-area split is evaluated whole).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DATA=$(realpath -m "${GEODISTILL_DATA:-data}")   # absolute: relative --out paths would resolve under the data root
RUNS=$(realpath -m "${GEODISTILL_RUNS:-runs}")
RESULTS=${RESULTS:-docs/results}
STAGES=${STAGES:-"data weak gps orientation distill ccvpe export calibrate evaluate curves"}
WEAK_SEEDS=${WEAK_SEEDS:-"2026"}   # the weak stage trains one run per seed
SAME_EVERY=${SAME_EVERY:-8}   # the same-area test split (1 500 queries) is evaluated on every 8th query: 188
CONFIGS=training/configs
TIER=${TIER:-hard}                # generator difficulty of the shipped data
TRAIN_SET=$DATA/shipped/nyse      # NewYork + Seattle: training halves (train/val) and same-area test halves
CROSS_SET=$DATA/shipped/sfch      # SanFrancisco + Chicago: cross-area test
MEDIUM_ORIENTATION_COMMIT=0be6bb3   # the last commit whose checkpoints/orientation is the medium-tier estimator
CALIB_SET=$DATA/shipped/calib     # NewYork + Seattle, other worlds (seed 1): fitting the calibrated confidence
# One thread per process: on a small shared CPU, torch's default thread pool slows every step down.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export GEODISTILL_DATA=$DATA GEODISTILL_RUNS=$RUNS

log() { echo "[ship $(date -u +%H:%M:%S)] $*"; }
want() { [[ " $STAGES " == *" $1 "* ]]; }
timed() { local start=$SECONDS; "$@"; log "took $((SECONDS - start)) s: $*"; }

synth() {  # OUT CITY... : the shared generator settings of the shipped data
    local out=$1; shift
    "$PYTHON" -m geodistill synth --out "$out" --cities "$@" --pano-size 384x192 --tile-size 256 --tier "$TIER" \
        --seed "${SEED:-0}" --workers 2 --no-progress --panos "$PANOS"
}

train() {  # RECIPE NAME [key=value ...] : train, or continue an interrupted run
    local recipe=$1 name=$2; shift 2
    if [[ -f "$RUNS/$name/last/config.json" || -f "$RUNS/$name/interrupted/config.json" ]]; then
        timed "$PYTHON" -m geodistill train --config "$recipe" --run-dir "$RUNS/$name" --resume "$@"
    else
        timed "$PYTHON" -m geodistill train --config "$recipe" --run-dir "$RUNS/$name" "$@"
    fi
}

if want data; then
    log "data: NewYork + Seattle (1500 panoramas each), SanFrancisco + Chicago (100 each), $TIER tier"
    PANOS=1500 timed synth "$TRAIN_SET" NewYork Seattle
    PANOS=100 timed synth "$CROSS_SET" SanFrancisco Chicago
fi
if want weak; then
    # Weak training is strongly seed-dependent at this scale (docs/results.md): train one run per seed and keep
    # the one with the lowest validation mean error as runs/shipped_weak (test splits are never looked at).
    for seed in $WEAK_SEEDS; do
        train "$CONFIGS/shipped_weak.yaml" "weak_sweep/seed_$seed" train.seed="$seed"
    done
    chosen=$("$PYTHON" training/select_weak_seed.py "$RUNS/weak_sweep" --summary "$RUNS/weak_sweep/summary.json")
    if [[ "$(cat "$RUNS/shipped_weak/.chosen_from" 2>/dev/null)" != "$chosen" ]]; then
        log "weak: shipping $chosen as $RUNS/shipped_weak"
        rm -rf "$RUNS/shipped_weak.tmp" && cp -a "$chosen" "$RUNS/shipped_weak.tmp"
        cp "$RUNS/weak_sweep/summary.json" "$RUNS/shipped_weak.tmp/seed_sweep.json"
        echo "$chosen" > "$RUNS/shipped_weak.tmp/.chosen_from"
        rm -rf "$RUNS/shipped_weak" && mv "$RUNS/shipped_weak.tmp" "$RUNS/shipped_weak"
        if [[ -d "$RUNS/shipped_distill" ]]; then  # distilled from another weak run: start it again
            stale="$RUNS/shipped_distill.stale-$(date -u +%Y%m%dT%H%M%S)"
            log "weak: the weak baseline changed; moving the old distillation run to $stale"
            mv "$RUNS/shipped_distill" "$stale"
        fi
    fi
fi
# the noisy-GPS base (position labels within 5 m: reported as noisy GPS, never as weak)
want gps && train "$CONFIGS/shipped_gps.yaml" shipped_gps
if want orientation; then  # the hard-tier retrain, fine-tuned from the previous release's (medium-tier) estimator
    if [[ ! -f "$RUNS/orientation_medium/best/config.json" ]]; then   # restored from git: the commit that shipped it
        mkdir -p "$RUNS/orientation_medium.tmp/best"
        for file in config.json weights.safetensors; do
            git show "$MEDIUM_ORIENTATION_COMMIT:checkpoints/orientation/$file" > "$RUNS/orientation_medium.tmp/best/$file"
        done
        mv "$RUNS/orientation_medium.tmp" "$RUNS/orientation_medium"
    fi
    train "$CONFIGS/hard_orientation.yaml" shipped_orientation
fi
if want distill; then
    train "$CONFIGS/shipped_distill.yaml" shipped_distill
    train "$CONFIGS/shipped_gps_distill.yaml" shipped_gps_distill
fi
if want ccvpe; then  # the CCVPE base (supervised, pose labels) and GeoDistill on it (docs/method.md §13)
    train "$CONFIGS/shipped_ccvpe.yaml" shipped_ccvpe
    train "$CONFIGS/shipped_ccvpe_distill.yaml" shipped_ccvpe_distill
fi

if want export; then
    log "export (fp16 weights, no optimizer state)"
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_weak/best" checkpoints/weak_baseline
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_distill/best_teacher" checkpoints/geodistill_teacher
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_distill/best" checkpoints/geodistill_student
    if [[ -f "$RUNS/shipped_orientation/last/config.json" ]] \
        && "$PYTHON" -c "import json,sys; m=json.load(open(sys.argv[1])); sys.exit(m['epoch'] < m['config']['train']['epochs'])" \
            "$RUNS/shipped_orientation/last/config.json"; then   # only a finished orientation run replaces the shipped one
        "$PYTHON" training/export_shipped.py "$RUNS/shipped_orientation/best" checkpoints/orientation
    else
        log "export: no finished orientation run; checkpoints/orientation stays as it is"
    fi
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_gps/best" checkpoints/gps_baseline
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_gps_distill/best_teacher" checkpoints/gps_geodistill_teacher
    "$PYTHON" training/export_shipped.py "$RUNS/shipped_gps_distill/best" checkpoints/gps_geodistill_student
    if [[ -d "$RUNS/shipped_ccvpe/best" ]]; then  # the CCVPE base, when the ccvpe stage has trained it
        "$PYTHON" training/export_shipped.py "$RUNS/shipped_ccvpe/best" checkpoints/ccvpe_base
    fi
    if [[ -d "$RUNS/shipped_ccvpe_distill/best" ]]; then  # GeoDistill on it
        "$PYTHON" training/export_shipped.py "$RUNS/shipped_ccvpe_distill/best_teacher" \
            checkpoints/ccvpe_geodistill_teacher
        "$PYTHON" training/export_shipped.py "$RUNS/shipped_ccvpe_distill/best" checkpoints/ccvpe_geodistill_student
    fi
    # the golden check: the shipped student's mean and median on the bundled samples (tests/test_golden_samples.py)
    "$PYTHON" training/golden_samples.py
fi

localizer_networks() {  # one line "FOLDER ROLE CALIBRATED(0/1)" per shipped localizer: its deployed network
    "$PYTHON" - <<'PY'
import json, pathlib
for config in sorted(pathlib.Path("checkpoints").glob("*/config.json")):
    meta = json.loads(config.read_text())
    if meta["task"] == "orientation":
        continue
    role = meta["role"]   # a distillation folder deploys one network: the teacher folder its teacher, the student its student
    print(config.parent, role, int(role in (meta.get("calibration") or {})))
PY
}

if want calibrate; then
    # The confidence (P(error <= 5 m)) of every shipped localizer network: fitted on a held-out calibration set
    # (400 panoramas of new NewYork/Seattle worlds, seed 1; used for nothing else), every 4th, at FoV 360/270/180/120/90 (one
    # seeded window each: 500 queries), stored in the checkpoint's config.json (export drops it, so a new export is
    # fitted again), then measured on both test splits at FoV 360/180/90.
    [[ -f "$CALIB_SET/synthetic_dataset.json" ]] || PANOS=200 SEED=1 timed synth "$CALIB_SET" NewYork Seattle
    mkdir -p "$RESULTS/calibration"
    localizer_networks | while read -r folder role calibrated; do
        role_flag=(); [[ $role == teacher || $role == student ]] && role_flag=(--role "$role")
        if [[ $calibrated == 0 ]]; then
            timed "$PYTHON" -m geodistill calibrate --checkpoint "$folder" "${role_flag[@]}" --data "$CALIB_SET" \
                --area same --split all --every 4 --no-progress < /dev/null
        fi
        for area in cross same; do
            data=$CROSS_SET; [[ $area == same ]] && data=$TRAIN_SET
            report=$RESULTS/calibration/$(basename "$folder")_${role}_${area}.json
            [[ -f "$report" && "$report" -nt "$folder/config.json" ]] && continue
            subset=(); [[ $area == same ]] && subset=(--every "$SAME_EVERY")
            "$PYTHON" -m geodistill calibrate --checkpoint "$folder" "${role_flag[@]}" --data "$data" --area "$area" \
                --measure --no-progress --report "$report" "${subset[@]}" < /dev/null \
                || log "the confidence of $folder ($role) misses the 10-point target on $area-area test; see $report"
        done
    done
    "$PYTHON" training/plot_reliability.py docs/reliability.png "$RESULTS"/calibration/*.json
fi

evaluate() {  # OUTPUT-NAME CHECKPOINT DATA AREA [extra evaluate arguments]
    local name=$1 checkpoint=$2 data=$3 area=$4; shift 4
    if [[ -f "$RESULTS/$name.json" ]]; then return 0; fi
    local subset=()
    [[ $area == same ]] && subset=(--every "$SAME_EVERY")
    "$PYTHON" -m geodistill evaluate --checkpoint "$checkpoint" --data "$data" --area "$area" --split test \
        --seed 0 --no-progress --json "$RESULTS/$name.json" --per-sample "$RESULTS/$name.csv" "${subset[@]}" "$@" \
        > "$RESULTS/$name.txt"
    log "evaluated $name"
}

if want evaluate; then
    mkdir -p "$RESULTS"
    for area in cross same; do
        data=$CROSS_SET; [[ $area == same ]] && data=$TRAIN_SET
        evaluate "centre_${area}" none "$data" "$area"
        for model in weak_baseline geodistill_teacher geodistill_student gps_baseline gps_geodistill_teacher \
                     gps_geodistill_student ccvpe_base ccvpe_geodistill_teacher ccvpe_geodistill_student; do
            [[ -d checkpoints/$model ]] || continue
            own_heading=$("$PYTHON" -c "import sys; from geodistill.inference import checkpoint_estimates_heading as e; print(int(e(sys.argv[1])))" "checkpoints/$model")
            for fov in 360 180 90; do
                evaluate "${model}_${area}_fov${fov}_aligned" "checkpoints/$model" "$data" "$area" --fov "$fov"
                if [[ $own_heading == 1 ]]; then  # CCVPE: its own heading, +-45 deg prior and the full circle
                    evaluate "${model}_${area}_fov${fov}_45" "checkpoints/$model" "$data" "$area" --fov "$fov" \
                        --orientation 45
                    evaluate "${model}_${area}_fov${fov}_unknown" "checkpoints/$model" "$data" "$area" \
                        --fov "$fov" --orientation unknown
                else
                    evaluate "${model}_${area}_fov${fov}_45" "checkpoints/$model" "$data" "$area" --fov "$fov" \
                        --orientation 45 --orientation-checkpoint checkpoints/orientation
                fi
            done
        done
        # fp16 check: the run's fp32 weights on the same settings as the shipped fp16 ones
        evaluate "fp32_weak_${area}_fov360_aligned" "$RUNS/shipped_weak/best" "$data" "$area" --fov 360
        evaluate "fp32_student_${area}_fov360_aligned" "$RUNS/shipped_distill/best" "$data" "$area" --fov 360
        evaluate "fp32_teacher_${area}_fov360_aligned" "$RUNS/shipped_distill/best_teacher" "$data" "$area" \
            --fov 360 --role teacher
    done
    # fp16 must change no reported metric by more than 0.05 m; fail loudly otherwise (then export with --fp32)
    "$PYTHON" - "$RESULTS" <<'PY'
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
pairs = {"weak": "weak_baseline", "student": "geodistill_student", "teacher": "geodistill_teacher"}
worst = 0.0
for area in ("cross", "same"):
    for fp32, fp16 in pairs.items():
        a = json.loads((results / f"fp32_{fp32}_{area}_fov360_aligned.json").read_text())
        b = json.loads((results / f"{fp16}_{area}_fov360_aligned.json").read_text())
        worst = max(worst, *(abs(a[k] - b[k]) for k in ("mean_m", "median_m")))
print(f"fp16 vs fp32: largest change of a mean or median {worst:.4f} m")
sys.exit(1 if worst > 0.05 else 0)
PY
fi

if want curves; then
    "$PYTHON" training/plot_curves.py docs/training_curves.png \
        "$RUNS/shipped_weak" "$RUNS/shipped_distill" "$RUNS/shipped_gps" "$RUNS/shipped_gps_distill"
    "$PYTHON" training/results_table.py "$RESULTS" > "$RESULTS/table.md"
fi
log "done; checkpoints:"
sha256sum checkpoints/*/weights.safetensors
