#!/usr/bin/env bash
# Builds the Worker (build/index.js + Wasm) with the pinned tools; wrangler's [build] command calls this.
set -euo pipefail
source "$(dirname "$0")/tool-env.sh"
cd "$SEKISHO_ROOT"
for tool in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$tool" ] || { echo "build-worker: $tool is missing; run 'make setup' first" >&2; exit 1; }
done
worker-build --release
