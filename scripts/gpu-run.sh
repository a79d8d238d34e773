#!/usr/bin/env bash
# The whole GPU run of issue 22, as one script, in the repository root of the GPU machine:
#   1. env    a fresh venv with the [gpu] extra (onnxruntime-gpu, carried as a slimmed wheel, see
#             scripts/gpu-prepare.sh) on top of the machine's torch; which providers the
#             inference sessions really use (session.get_providers());
#   2. data   the token cache, built there with the project's builder from the carried POP909;
#   3. bench  `emsync-bridge bench decode --json`: the emsync-37m decoder and the default model's
#             60 s, cached ONNX on CUDA (IO binding) and on the CPU provider in the same run, GPU memory;
#   4. train  `emsync-bridge train --config emsync-base` for the minutes that fit, checkpointing;
#   5. ship   the best weights, split into parts the device tool can bring back;
#   6. gen37  emsync-37m generating 20 s, GPU vs CPU provider, if time is left.
# Everything lands in $OUT: run.log, results.json (rewritten after every stage), train.log and the
# weight parts. A global deadline keeps the whole run inside GPU_RUN_BUDGET_S; each stage has its
# own `timeout`, and a failed stage does not stop the later ones.
#
# Smoke run (CI, CPU): GPU_RUN_SMOKE=1 uses the current python as is, a tiny synthetic cache,
# `bench decode --quick`, and a few seconds of training; same stages, same outputs.
#
# Settings (environment): OUT (default out/gpu-run), GPU_CARRY (gpu-carry), GPU_RUN_BUDGET_S (540),
# GPU_TRAIN_MINUTES (3), GPU_TRAIN_CONFIG (emsync-base), GPU_TRAIN_BATCH (32), GPU_TRAIN_LR (1e-3),
# GPU_STAGES (env data bench train ship), GPU_DATA_ARGS (extra builder flags), PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
START=$(date +%s)
BUDGET="${GPU_RUN_BUDGET_S:-540}"
SMOKE="${GPU_RUN_SMOKE:-0}"
OUT="${OUT:-$REPO/out/gpu-run}"
CARRY="${GPU_CARRY:-$REPO/gpu-carry}"
WORK="${GPU_WORK:-$(mktemp -d /tmp/emsync-gpu.XXXXXX)}"
STAGES="${GPU_STAGES:-env data bench train ship}"
CONFIG="${GPU_TRAIN_CONFIG:-emsync-base}"
MINUTES="${GPU_TRAIN_MINUTES:-3}"
BATCH="${GPU_TRAIN_BATCH:-32}"
LR="${GPU_TRAIN_LR:-1e-3}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1
export EMSYNC_CACHE_DIR="$WORK/cache" EMSYNC_MODELS_DIR="$WORK/models"
export TQDM_MININTERVAL=20  # progress bars print every 20 s, not 10 times a second, into the log
export SMOKE CARRY WORK PY START OUT REPO
if [ "$SMOKE" = 1 ]; then
  export OMP_NUM_THREADS=1 EMSYNC_ORT_THREADS=1
fi

left() { echo $((START + BUDGET - $(date +%s))); }
say() { echo "[gpu-run $(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*"; }
collect() { "$PY" scripts/gpu/gpu_run.py collect "$WORK" "$OUT" || say "collect failed"; }
# stage NAME CAP_S CMD...: run CMD (a program, or an exported function) under min(CAP_S, time
# left - RESERVE) seconds; its exit status is recorded in $WORK/NAME-status.json
RESERVE=25
stage() {
  local name=$1 cap=$2; shift 2
  local t=$(( $(left) - RESERVE )); [ "$cap" -lt "$t" ] && t=$cap
  if [ "$t" -lt 5 ]; then say "$name: skipped, no time left"; echo "{\"skipped\": \"no time left\"}" >"$WORK/$name-status.json"; return 1; fi
  say "$name: start (limit ${t}s)"
  local s=$(date +%s) rc=0
  if declare -F "$1" >/dev/null; then
    timeout -k 10 "$t" bash -c "$*" || rc=$?
  else
    timeout -k 10 "$t" "$@" || rc=$?
  fi
  say "$name: exit $rc after $(( $(date +%s) - s ))s$([ $rc -eq 124 ] && echo ' (timed out)')"
  echo "{\"rc\": $rc, \"seconds\": $(( $(date +%s) - s )), \"limit_s\": $t}" >"$WORK/$name-status.json"
  collect
  return $rc
}
has() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
export -f say left
importable() {
  "$PY" -c "import emsync_bridge.export" 2>/dev/null && return
  # Not installed for this python: the installed layout from a copy of the sources (export/ and
  # ui/ are subpackages of emsync_bridge once installed, see pyproject.toml).
  if [ ! -d "$WORK/src/emsync_bridge" ]; then
    mkdir -p "$WORK/src" && cp -r emsync_bridge "$WORK/src/" && cp -r export "$WORK/src/emsync_bridge/export" \
      && cp -r ui "$WORK/src/emsync_bridge/ui"
  fi
  export PYTHONPATH="$WORK/src${PYTHONPATH:+:$PYTHONPATH}"
  say "emsync_bridge not installed for $PY: running from a copy of the sources ($WORK/src)"
}
importable

# GPU memory: the device's peak over the whole run, sampled every 200 ms
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader,nounits -lms 200 \
    >"$WORK/gpu-samples.csv" 2>/dev/null &
  SAMPLER=$!
  trap 'kill $SAMPLER 2>/dev/null' EXIT
fi

say "start: smoke=$SMOKE stages='$STAGES' budget=${BUDGET}s out=$OUT work=$WORK"

# ---------------------------------------------------------------------------------------- 1. env
env_stage() {
  if [ "$SMOKE" != 1 ] && [ -d "$CARRY" ]; then
    local venv="$WORK/venv" base
    base="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    local pip=("$venv/bin/python" -m pip)
    if ! "$PY" -m venv "$venv" >"$WORK/venv.log" 2>&1; then
      # a base Python without ensurepip: a venv without pip, filled by the machine's pip
      rm -rf "$venv" && "$PY" -m venv --without-pip "$venv" || return 1
      pip=("$PY" -m pip --python "$venv/bin/python")
    fi
    # The machine's torch, CUDA libraries and numpy live in its own (venv's) site-packages: seen
    # from the fresh venv as a site dir (its .pth files too), after the fresh venv's own packages.
    echo "import site; site.addsitedir('$base')" \
      >"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/machine-site.pth"
    local parts=("$CARRY"/*/ort-wheel.xz.*) meta="$CARRY/b/ort-wheel.json"
    if [ -f "$meta" ] && [ -e "${parts[0]}" ]; then
      local name sha; name="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wheel"])' "$meta")"
      sha="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["xz_sha256"])' "$meta")"
      # parts in the order of their number (ort-wheel.xz.00, .01, ...), whichever folder holds them
      cat $(for p in "${parts[@]}"; do echo "${p##*.} $p"; done | sort | cut -d' ' -f2) >"$WORK/ort.whl.xz"
      if [ "$(sha256sum "$WORK/ort.whl.xz" | cut -c1-64)" != "$sha" ]; then
        say "env: the onnxruntime-gpu wheel is incomplete (parts: ${parts[*]}): was part a carried by a call just before, on a warm machine? CUDA checks skipped"
      else
        xz -d -T0 -c "$WORK/ort.whl.xz" >"$WORK/$name" && rm -f "$WORK/ort.whl.xz"
        # --ignore-installed: never uninstall the machine's own onnxruntime (seen through the .pth)
        "${pip[@]}" install -q --no-index --no-deps --ignore-installed "$WORK/$name" || return 1
      fi
    else
      say "env: no onnxruntime-gpu wheel in $CARRY: CUDA checks skipped"
    fi
    if compgen -G "$CARRY/b/wheels/*.whl" >/dev/null; then
      "${pip[@]}" install -q --no-index --no-deps --ignore-installed "$CARRY"/b/wheels/*.whl || return 1
    fi
    "${pip[@]}" install -q --no-index --no-deps --no-build-isolation -e "$REPO" >"$WORK/pip-e.log" 2>&1 \
      || echo "env: pip could not install the project offline ($(grep -m1 'error:' "$WORK/pip-e.log")); a source copy will do"
    echo "export PY='$venv/bin/python'" >"$WORK/env.sh"
    PY="$venv/bin/python"
    # onnxruntime's CUDA provider finds cuBLAS, cuDNN, cuFFT, cuRAND and the runtime of the
    # machine's nvidia-* packages (the same CUDA 13 that its torch uses) through the loader path.
    local libs; libs="$(find "$base/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd:)"
    export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "export LD_LIBRARY_PATH='$LD_LIBRARY_PATH'" >>"$WORK/env.sh"
  fi
  "$PY" - >"$WORK/env.json" <<'EOF'
import json, os, platform, sys
info = {"python": sys.executable, "version": platform.python_version(), "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg()}
try:
    import torch
    info.update(torch=torch.__version__, cuda=torch.cuda.is_available(),
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
except ImportError as exc:
    info["torch"] = f"missing: {exc}"
try:
    from importlib.metadata import version
    import onnxruntime as ort
    dists = {}
    for d in ("onnxruntime", "onnxruntime-gpu"):
        try:
            dists[d] = version(d)
        except Exception:
            pass
    info.update(onnxruntime=ort.__version__, onnxruntime_file=ort.__file__, onnxruntime_dists=dists,
                available_providers=ort.get_available_providers())
except ImportError as exc:
    info["onnxruntime"] = f"missing: {exc}"
print(json.dumps(info))
EOF
  cat "$WORK/env.json"
}
export -f env_stage
if has env; then
  stage env 180 env_stage || say "env: failed; the later stages run with what it left"
  # shellcheck disable=SC1091
  [ -f "$WORK/env.sh" ] && . "$WORK/env.sh" && export PY LD_LIBRARY_PATH
fi
importable
# which providers the inference sessions really use (session.get_providers())
if has env; then stage providers 120 bash -c "'$PY' scripts/gpu/gpu_run.py providers >'$WORK/providers.json' && cat '$WORK/providers.json'"; fi

# --------------------------------------------------------------------------------------- 2. data
DATA="$WORK/data_cache"
export DATA
data_stage() {
  if [ "$SMOKE" = 1 ]; then
    "$PY" scripts/gpu/gpu_run.py synth-cache "$DATA"
    return
  fi
  local src="$WORK/sources"
  mkdir -p "$src"
  for t in "$CARRY"/b/data/*.tar.xz; do tar -xJf "$t" -C "$src" || return 1; done
  # main's current recipe, by its own builder. A recipe with more sources or flags: carry them
  # (GPU_DATA_SOURCES in gpu-prepare.sh) and pass GPU_DATA_ARGS, where {src} is their folder here,
  # e.g. GPU_DATA_ARGS='--groove {src}/groove-midi'
  local extra="${GPU_DATA_ARGS:-}"
  # shellcheck disable=SC2086
  "$PY" -m emsync_bridge.music.data --pop909 "$src/pop909" --out "$DATA" --workers "$(nproc)" \
    ${extra//\{src\}/$src} </dev/null || return 1
  [ -f "$DATA/tokens.npy" ] && "$PY" -c 'import json,sys; i=json.load(open(sys.argv[1])); print(json.dumps({"renditions": len(i["renditions"]), "tokens": sum(e["length"] for e in i["renditions"]), "build_seconds": i.get("build_seconds"), "errors": len(i.get("errors", []))}))' "$DATA/index.json" >"$WORK/data.json"
}
export -f data_stage
if has data; then stage data 150 data_stage; fi

# -------------------------------------------------------------------------------------- 3. bench
# the default model (60 s of music) and the emsync-37m decoder: CUDA vs the CPU provider
if has bench; then
  if [ "$SMOKE" = 1 ]; then
    stage bench 240 bash -c "'$PY' -m emsync_bridge bench decode --quick --json >'$WORK/bench-default.json'"
  else
    stage bench 150 bash -c "'$PY' -m emsync_bridge bench decode --json >'$WORK/bench-default.json'"
  fi
fi

# -------------------------------------------------------------------------------------- 4. train
RUN="$WORK/run-$CONFIG"
if has train; then
  if [ "$SMOKE" = 1 ]; then
    stage train 240 "$PY" -m emsync_bridge train --data "$DATA" --run "$RUN" --config "$CONFIG" \
      --minutes 0.1 --batch-size 2 --threads 1 --checkpoint-minutes 1
  else
    # the seconds that fit: what is left, less loading the data, validating and shipping (~90 s)
    secs=$(( $(left) - RESERVE - 90 )); want=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
    [ "$want" -lt "$secs" ] && secs=$want
    if [ "$secs" -lt 30 ]; then
      say "train: skipped, ${secs}s left"
    else
      m=$(awk -v s="$secs" 'BEGIN { printf "%.2f", s / 60 }')
      say "train: $CONFIG for $m min, batch $BATCH, lr $LR"
      stage train $(( secs + 150 )) "$PY" -m emsync_bridge train --data "$DATA" --run "$RUN" \
        --config "$CONFIG" --minutes "$m" --batch-size "$BATCH" --lr "$LR" --checkpoint-minutes 1 </dev/null
    fi
  fi
  [ -f "$RUN/summary.json" ] && cp "$RUN/summary.json" "$WORK/train.json"
  [ -f "$RUN/train.log" ] && cp "$RUN/train.log" "$OUT/train.log"
fi

# --------------------------------------------------------------------------------------- 5. ship
if has ship; then
  if [ -f "$RUN/best.pt" ]; then
    W="$WORK/ship/emsync-base.safetensors"
    stage ship 60 bash -c "'$PY' -m emsync_bridge train --run '$RUN' --ship '$W' && '$PY' scripts/gpu/gpu_run.py package '$W' '$OUT' '$WORK/ship.json'"
  else
    say "ship: no checkpoint in $RUN"
  fi
fi

# ------------------------------------------------------------------------ 6. bench, emsync-37m
# emsync-37m generating 20 s of music, GPU and CPU provider (its decoder was timed in stage 3 and
# its export is reused), with what time is left
if has bench; then
  big=emsync-37m secs=20
  [ "$SMOKE" = 1 ] && big=default secs=2  # the smoke run: the same path on the shipped small model
  if [ "$(left)" -ge $((RESERVE + 40)) ]; then
    stage gen37 120 bash -c "'$PY' scripts/gpu/gpu_run.py generation $big --seconds $secs >'$WORK/gen-37m.json'"
  else
    say "gen37: skipped, $(left)s left"
  fi
fi

# GPU memory peak over the run (nvidia-smi samples)
if [ -s "$WORK/gpu-samples.csv" ]; then
  awk -F', *' '{ if ($2+0 > m) m = $2+0; if ($3+0 > u) u = $3+0 } END { printf "{\"peak_memory_used_mb\": %d, \"peak_utilization_pct\": %d, \"samples\": %d}\n", m, u, NR }' \
    "$WORK/gpu-samples.csv" >"$WORK/gpu-memory.json"
fi
collect
say "done in $(( $(date +%s) - START ))s; results in $OUT"
