#!/usr/bin/env bash
# Prints the size of the built Worker: what Cloudflare counts against the script limit is the gzipped upload.
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=build/index_bg.wasm
js=build/index.js
[ -f "$wasm" ] || { echo "size: build the Worker first (make build)"; exit 1; }
raw=$(( $(stat -c %s "$wasm") + $(stat -c %s "$js") ))
gz=$(( $(gzip -9 -c "$wasm" | wc -c) + $(gzip -9 -c "$js" | wc -c) ))
printf 'worker size: wasm %d B + js %d B = %d B raw, %d B gzipped (-9)\n' "$(stat -c %s "$wasm")" "$(stat -c %s "$js")" "$raw" "$gz"
