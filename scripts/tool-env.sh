# Sourced by the build and test scripts: where the pinned build tools live. worker-build would try to download
# wasm-opt/esbuild/wasm-bindgen when these do not point at existing files, so they are checked here.
SEKISHO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$SEKISHO_ROOT/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$SEKISHO_ROOT/node_modules/.bin/esbuild}"
export WRANGLER_SEND_METRICS=false
export WORKER_BUILD_VERSION="0.8.7"
