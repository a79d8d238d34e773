#!/usr/bin/env bash
# Prepare, on a machine WITH network, what scripts/gpu-run.sh needs on a GPU machine WITHOUT one:
#   gpu-carry/b/wheels/    mido and platformdirs (pure Python; the GPU machine has the rest)
#   gpu-carry/b/data/      NAME.tar.xz for each source the token cache is built from there
#                          (GPU_DATA_SOURCES, folders of $EMSYNC_SHARED/data; default pop909)
#   gpu-carry/{a,b}/ort-wheel.xz.NN + b/ort-wheel.json
#                          onnxruntime-gpu (the [gpu] extra) for that machine's Python and GPU,
#                          slimmed to its GPU architecture (scripts/gpu/slim_wheel.py) and xz'd
# The device tool carries at most 64 MiB per call, working tree included. If it does not all fit
# in one call, the wheel is split: part a travels in a first, short call and stays on the warm
# machine (ignored paths there are kept between calls), part b with the real run. The commands to
# run are printed at the end.
# Settings: GPU_CARRY (gpu-carry), EMSYNC_SHARED (../shared), ORT_GPU_VERSION (1.31.1, built for
# CUDA 13 like the machine's torch), GPU_PYTHON_VERSION (3.12), GPU_SM (90: H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY="${GPU_CARRY:-gpu-carry}"
SHARED="${EMSYNC_SHARED:-../shared}"
ORT_VERSION="${ORT_GPU_VERSION:-1.31.1}"
PYV="${GPU_PYTHON_VERSION:-3.12}"
SM="${GPU_SM:-90}"
PY="${PYTHON:-.venv/bin/python}"
LIMIT=$((64 * 1024 * 1024))
MARGIN=$((1024 * 1024))
[ -d "$SHARED/data/pop909" ] || { echo "error: no POP909 in $SHARED/data/pop909 (set EMSYNC_SHARED)" >&2; exit 2; }
git check-ignore -q "$CARRY/x" || { echo "error: $CARRY is not ignored by git: it would travel twice" >&2; exit 2; }

rm -rf "$CARRY"
mkdir -p "$CARRY/a" "$CARRY/b/wheels" "$CARRY/b/data" "$CARRY/.download"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp "${platforms[@]}" \
  -d "$CARRY/.download" "onnxruntime-gpu==$ORT_VERSION"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" -d "$CARRY/b/wheels" mido platformdirs
wheel="$(ls "$CARRY"/.download/onnxruntime_gpu-*.whl)"
name="$(basename "$wheel")"
echo "slimming $name to sm_$SM"
"$PY" scripts/gpu/slim_wheel.py "$wheel" "$CARRY/.download/slim.whl" --keep-sm "$SM"
echo "compressing (xz -9, a few minutes)"
xz -9 -T2 -c "$CARRY/.download/slim.whl" >"$CARRY/.download/ort-wheel.xz"
for src in ${GPU_DATA_SOURCES:-pop909}; do
  tar -cJf "$CARRY/b/data/$src.tar.xz" -C "$SHARED/data" "$src"
done

# What travels anyway: tracked files and untracked files git does not ignore.
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
other=$(du -sb "$CARRY/b" | cut -f1)
xzsize=$(stat -c %s "$CARRY/.download/ort-wheel.xz")
room_b=$((LIMIT - MARGIN - tree - other - 4096))
room_a=$((LIMIT - MARGIN - tree))
if [ "$xzsize" -le "$room_b" ]; then
  cp "$CARRY/.download/ort-wheel.xz" "$CARRY/b/ort-wheel.xz.00"
  rmdir "$CARRY/a"
  parts='["b/ort-wheel.xz.00"]'
else
  first=$room_a
  [ $((xzsize - first)) -le "$room_b" ] || {
    echo "error: ${xzsize} bytes of wheel + $((other)) of data + ${tree} of tree do not fit two calls of 64 MiB" >&2; exit 1; }
  head -c "$first" "$CARRY/.download/ort-wheel.xz" >"$CARRY/a/ort-wheel.xz.00"
  tail -c +$((first + 1)) "$CARRY/.download/ort-wheel.xz" >"$CARRY/b/ort-wheel.xz.01"
  parts='["a/ort-wheel.xz.00", "b/ort-wheel.xz.01"]'
fi
sha=$(sha256sum "$CARRY/.download/ort-wheel.xz" | cut -c1-64)
printf '{"wheel": "%s", "version": "%s", "sm": %s, "xz_sha256": "%s", "xz_bytes": %s, "parts": %s}\n' \
  "$name" "$ORT_VERSION" "$SM" "$sha" "$xzsize" "$parts" >"$CARRY/b/ort-wheel.json"
rm -rf "$CARRY/.download"

echo
echo "gpu-carry ready (tree ${tree} bytes travels with each call):"
du -sb "$CARRY"/* | sed 's/^/  /'
echo
if [ -d "$CARRY/a" ]; then
  echo "On the GPU machine, two calls back to back (the second within the machine's 30 s warm time):"
  echo "  run  carry=[\"$CARRY/a\"]  command='ls -la $CARRY/a && nvidia-smi -L'  timeout_s=120"
else
  echo "On the GPU machine, one call:"
fi
echo "  run  carry=[\"$CARRY/b\"]  command='set -o pipefail; OUT=\$OUT GPU_RUN_BUDGET_S=540 bash scripts/gpu-run.sh'  timeout_s=590"
echo "Then here: python scripts/gpu/gpu_run.py join FILES_AT emsync_bridge/models/emsync-base.safetensors"
echo "      and: python scripts/gpu/gpu_run.py decide emsync-base --data data_cache --out emsync-base-eval.json"
