#!/usr/bin/env bash
# Issue 7's benchmark suite: every scenario through `wch-bridge bench` (the real worker, scratch tables
# `wchbench_<hex>_` that are dropped afterwards), 3 runs each, medians into benchmarks/RESULTS.md.
#
#   benchmarks/run.sh                       # all scenarios (about 40 min on 2 cores)
#   benchmarks/run.sh --only noop,sleep     # some: noop noop_c32 sleep profile lag broadcast broadcast_k2 rss report
#   WCH_BRIDGE_BENCH_DSN=mysql+pymysql://u:p@host/db benchmarks/run.sh
#   WCH_BENCH_RSS_ACTIONS=200000 benchmarks/run.sh --only rss     # a shorter RSS drain (default 1,000,000)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
cd "$repo"
echo "wch-bridge benchmarks: $("$py" --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$py" "$here/scenarios.py" "$@"
