#!/usr/bin/env bash
# Regenerates the TypeScript API from proto/ (buf + protoc-gen-es) and rebuilds web/dist, the
# assets the `rosetta` binary embeds. The built files are committed, so running Rosetta needs
# no Node; run this after changing web/src, web/static or proto/.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/.bin ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi
rm -rf src/gen
npx buf generate
npx tsc --noEmit -p .
mkdir -p dist
npx esbuild src/main.ts --bundle --format=esm --target=es2022 --minify --legal-comments=none --outfile=dist/app.js
cp static/index.html static/app.css dist/
