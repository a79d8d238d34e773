"""ONNX export of the music transformer with a KV cache (installed as `emsync_bridge.export`).

Three graphs per model; caches are one keys and one values tensor [1, n_head, positions, d_head]
per layer, named `<kind>_k_<layer>` / `<kind>_v_<layer>`:
- `prefill.onnx`: (tokens[1,T], boundary[1,T], valence[1], arousal[1]) -> (logits[1,V],
  present_*[1,H,2+T,dh]). The 2 are the V/A prefix slots; NaN valence/arousal selects the
  learned null vector inside the graph.
- `step.onnx`: (tokens[1,T], boundary[1,T], past_len[1] int64, cache_*[1,H,C,dh]) -> (logits[1,V],
  new_*[1,H,T,dh]). Positions < past_len of the cache are the past; whatever sits at or beyond
  past_len is ignored. It returns only the new keys/values: on CPU the engine writes them into
  preallocated buffers of capacity C = context_len, so no step ever copies the whole cache (the
  concat-and-return design costs a full cache copy per token, ~100 MB/token for the 37 M model).
- `append.onnx`: (cache_*[1,H,C,dh], new_*[1,H,T,dh]) -> out_* = concat along positions. Used on
  CUDA, where the cache stays in device memory (C = past_len there) and a copy is cheap.
T, C are dynamic. The exporter (`emsync_bridge.export.onnx_export`) imports torch; this package
stays torch-free so the runtime can read names and the version without it.
"""

# Bump whenever the graphs' inputs/outputs or the export recipe change: it is part of the cache key,
# so users' cached exports are rebuilt rather than misread.
EXPORTER_VERSION = 3

GRAPHS = ("prefill", "step", "append")
PREFILL_INPUTS = ("tokens", "boundary", "valence", "arousal")
STEP_INPUTS = ("tokens", "boundary", "past_len")  # + kv_names(n_layer, "cache")
PARITY_TOLERANCE = 1e-3


def kv_names(n_layer: int, kind: str) -> list[str]:
    """[f"{kind}_k_0", f"{kind}_v_0", f"{kind}_k_1", ...]: one keys and one values per layer."""
    return [f"{kind}_{kv}_{i}" for i in range(n_layer) for kv in ("k", "v")]
