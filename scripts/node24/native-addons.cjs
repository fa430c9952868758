'use strict';
// Preloaded (NODE_OPTIONS=--require) into every process and thread of `npm run test:node24`.
//
// Native addons that use V8's API directly (better-sqlite3) are compiled by `npm ci` for the ABI
// of the Node that ran it (Node 20 here): Node 24 refuses to load them. scripts/test-node24.sh
// compiles a second copy for Node 24 into node_modules/.cache and passes, in
// CLIPLINE_ADDON_REDIRECTS, a JSON object {"<addon the tree holds>": "<copy for this ABI>"} and,
// in CLIPLINE_ADDON_ABI, the ABI (process.versions.modules) the copies were built for. Loads of
// the listed files are sent to their copies; nothing in node_modules is rebuilt or replaced, so a
// Node 20 process running from the same tree at the same time, or after a run that was killed,
// still finds its own binary.
//
// Worker threads inherit this preload (they inherit NODE_OPTIONS); a process spawned with an
// environment that leaves out NODE_OPTIONS does not, and loads the tree's binary as usual.
const path = require('node:path');

const redirects = process.env.CLIPLINE_ADDON_REDIRECTS;
if (redirects && process.versions.modules === process.env.CLIPLINE_ADDON_ABI) {
  const targets = new Map(Object.entries(JSON.parse(redirects)).map(([from, to]) => [path.toNamespacedPath(from), path.toNamespacedPath(to)]));
  const dlopen = process.dlopen;
  // Module._extensions['.node'] looks process.dlopen up on every call, so require(), createRequire
  // and the `bindings` package all come through here.
  process.dlopen = function dlopenForThisAbi(module, filename, ...rest) {
    return dlopen.call(this, module, targets.get(filename) ?? filename, ...rest);
  };
}
