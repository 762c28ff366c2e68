#!/usr/bin/env bash
# Issue 7's benchmark suite: every scenario through `wch-bridge bench` (the real worker, scratch tables
# `wchbench_<hex>_` that are dropped afterwards), 3 runs each, medians into benchmarks/RESULTS.md.
#
#   benchmarks/run.sh                       # all scenarios (about 1.5 h on 2 cores; the RSS drain defaults to 200,000 actions)
#   benchmarks/run.sh --only noop,sleep     # some: noop sleep proto ab profile lag broadcast broadcast_k2 rss report
#   WCH_BRIDGE_BENCH_DSN=mysql+pymysql://u:p@host/db benchmarks/run.sh
#   WCH_BENCH_RSS_ACTIONS=1000000 benchmarks/run.sh --only rss    # the full 1,000,000-action RSS drain
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
cd "$repo"
echo "wch-bridge benchmarks: $("$py" --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$py" "$here/scenarios.py" "$@"
