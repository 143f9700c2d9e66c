#!/usr/bin/env bash
# Installs everything the build and tests need, from the package registries only. Idempotent: pinned tools
# already present are skipped, so a second run takes seconds.
set -euo pipefail
source "$(dirname "$0")/tool-env.sh"
cd "$SEKISHO_ROOT"

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# `make ci` checks formatting and lints.
for component in clippy rustfmt; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done

if [ "$(worker-build --version 2>/dev/null | awk '{print $2}')" != "$WORKER_BUILD_VERSION" ]; then
  echo "setup: installing worker-build $WORKER_BUILD_VERSION (about 5 minutes)"
  cargo install --locked worker-build --version "$WORKER_BUILD_VERSION"
fi

# The wasm-bindgen CLI must match the library in Cargo.lock exactly. Installed without --locked: its own
# lockfile pins a crate version the registry no longer serves.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$("$WASM_BINDGEN_BIN" --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  echo "setup: installing wasm-bindgen-cli $bindgen_version (about 5 minutes)"
  cargo install wasm-bindgen-cli --version "$bindgen_version" --force
fi

if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The admin console's browser test drives the distribution's Chromium (playwright-core from npm, no browser
# download). Installed from the Debian packages when missing and we may (root); SEKISHO_CHROMIUM points elsewhere.
if [ -z "${SEKISHO_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium from the distribution's packages (about 2 minutes)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null
  else
    echo "setup: chromium is missing (the admin console's browser test will fail); install it or set SEKISHO_CHROMIUM" >&2
  fi
fi

for tool in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$tool" ] || { echo "setup: $tool is missing" >&2; exit 1; }
done
echo "setup: tools ready (worker-build $WORKER_BUILD_VERSION, wasm-bindgen $bindgen_version)"
