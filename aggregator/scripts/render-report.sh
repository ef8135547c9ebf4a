#!/usr/bin/env bash
# Renders an HTML budget report (`cairn budget report --format html --output R.html`)
# to a PNG with headless Chromium, to check by eye that the page draws as intended.
#
#   aggregator/scripts/render-report.sh R.html [OUT.png] [WIDTH,HEIGHT]
#
# Needs Chromium (Debian: `apt-get install -y chromium`). The test suite does not: the
# report's structure is tested without a browser (aggregator/tests/budget_report.rs).
# The page is self-contained, so Chromium runs with networking features off.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 REPORT.html [OUT.png] [WIDTH,HEIGHT]" >&2
    exit 2
fi
html=$(realpath "$1")
out=${2:-${html%.html}.png}
size=${3:-1200,900}

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    echo "no Chromium found: apt-get install -y chromium" >&2
    exit 1
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$size" \
    --screenshot="$(realpath -m "$out")" "file://$html" >/dev/null 2>&1
echo "wrote $out"
