#!/usr/bin/env bash
# Runs every benchmark, side by side with its peers, and writes each result table to
# bench/results/<name>-<UTC date>.md; docs/benchmarks.md quotes them.
#   npm run bench            # all three, full size
#   npm run bench:e2e        # 1000 jobs at 1 s latency through the whole system
#   npm run bench:throttle   # 10,000 and 100,000 keys at 1 call/s each, against bottleneck
#   npm run bench:parked     # the heap and buffers one parked job costs a real node
# The peer of the e2e benchmark runs on Debian's python3-aiohttp when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
day=$(date -u +%Y-%m-%d)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; load: $(cut -d' ' -f1-3 /proc/loadavg)"
npm run -s bench:e2e -- --out "bench/results/e2e-$day.md"
npm run -s bench:throttle -- --out "bench/results/throttle-$day.md"
npm run -s bench:parked | tee "bench/results/parked-$day.json"
