#!/usr/bin/env bash
# Refresh the vendored Bootstrap from the npm registry: bash scripts/vendor_bootstrap.sh [VERSION]
set -euo pipefail
version="${1:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "bootstrap@${version}" >/dev/null
tar xzf bootstrap-*.tgz
dest="$root/static/vendor/bootstrap"
mkdir -p "$dest/css" "$dest/js"
cp package/dist/css/bootstrap.min.css package/dist/css/bootstrap.min.css.map "$dest/css/"
cp package/dist/js/bootstrap.bundle.min.js package/dist/js/bootstrap.bundle.min.js.map "$dest/js/"
cp package/LICENSE "$dest/LICENSE"
node -p "require('./package/package.json').version" > "$dest/VERSION"
echo "Bootstrap $(cat "$dest/VERSION") vendored into static/vendor/bootstrap"
