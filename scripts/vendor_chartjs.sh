#!/usr/bin/env bash
# Refresh the vendored Chart.js (the queue dashboard's chart) from the npm registry:
#   bash scripts/vendor_chartjs.sh [VERSION]
# Served from our static files: no CDN, so the dashboard works on a closed network.
set -euo pipefail
version="${1:-4}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --loglevel=warn "chart.js@${version}" >/dev/null
tar xzf chart.js-*.tgz
dest="$root/static/vendor/chartjs"
mkdir -p "$dest"
cp package/dist/chart.umd.min.js package/dist/chart.umd.min.js.map "$dest/"
cp package/LICENSE.md "$dest/LICENSE.md"
node -p "require('./package/package.json').version" > "$dest/VERSION"
echo "Chart.js $(cat "$dest/VERSION") vendored into static/vendor/chartjs"
