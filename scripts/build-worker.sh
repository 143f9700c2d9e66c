#!/usr/bin/env bash
# Builds the Worker (build/index.js + Wasm) with the pinned tools; wrangler's [build] command calls this.
set -euo pipefail
source "$(dirname "$0")/tool-env.sh"
cd "$SEKISHO_ROOT"
for tool in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$tool" ] || { echo "build-worker: $tool is missing; run 'make setup' first" >&2; exit 1; }
done
# The Worker is its own crate; worker-build writes its output beside it, and wrangler.toml, the tests and the
# benches read it from build/ at the repository root.
(cd crates/sekisho-worker && worker-build --release)
rm -rf build
mv crates/sekisho-worker/build build
# worker-build always keeps the Wasm "name" section (function names for stack traces): about 70 KB of the
# gzipped upload. It is dropped here; SEKISHO_KEEP_NAMES=1 keeps it for a build whose panics should show Rust
# function names instead of wasm-function[N].
if [ "${SEKISHO_KEEP_NAMES:-0}" != "1" ]; then
  node scripts/wasm-strip-names.mjs build/index_bg.wasm
fi
