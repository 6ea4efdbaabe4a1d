#!/usr/bin/env bash
# bench/waf/run.sh - Rampart's WAF vs libmodsecurity 3 (Debian libmodsecurity3 3.0.9), side by
# side, in one run: the same OWASP CRS v4 files, the same engine settings
# (modsecurity.conf-recommended, SecRuleEngine On), the same four requests, CPU microseconds
# per full transaction (phases 1-5), at paranoia levels 1 and 4. Then the criterion benchmark.
#
#   bench/waf/run.sh                  # side-by-side table + criterion
#   bench/waf/run.sh --no-criterion   # side-by-side table only
#
# Environment: RAMPART_ITERATIONS (default 20000), MODSEC_ITERATIONS (default 2000),
# RAMPART_CRS_DIR (default ../shared/crs/v4.28.0), CARGO_TARGET_DIR.
# Needs: apt-get install libmodsecurity-dev gcc
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export RAMPART_CRS_DIR=${RAMPART_CRS_DIR:-$(cd "$ROOT/../shared/crs/v4.28.0" && pwd)}
RAMPART_ITERATIONS=${RAMPART_ITERATIONS:-20000}
MODSEC_ITERATIONS=${MODSEC_ITERATIONS:-2000}
CRITERION=1
[ "${1:-}" = "--no-criterion" ] && CRITERION=0

WORK=$(mktemp -d /tmp/rampart-wafbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ ! -f /usr/include/modsecurity/modsecurity.h ]; then
  echo "libmodsecurity-dev is missing: apt-get install libmodsecurity-dev" >&2
  exit 1
fi
gcc -O2 -Wall -Wextra -o "$WORK/modsec_bench" bench/waf/modsec_bench.c -lmodsecurity

cargo build --release -q -p rampart-waf --example bench_transactions
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_transactions
"$BIN" write-peer-inputs "$WORK"
REQS=("$WORK/clean_get.req" "$WORK/form_post.req" "$WORK/json_post_10k.req" "$WORK/attack_get_sqli.req")

echo "== $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD) on $(nproc) cores" >&2
: >"$WORK/modsec.txt"
for pl in 1 4; do
  "$WORK/modsec_bench" "$WORK/modsec-pl$pl.conf" "PL$pl" "$MODSEC_ITERATIONS" "${REQS[@]}" >>"$WORK/modsec.txt"
done
"$BIN" run "$RAMPART_ITERATIONS" >"$WORK/rampart.txt"

echo
echo "CPU microseconds per transaction (status, logged rules):"
awk '
  NR == FNR { ms[$1" "$2] = $3; mss[$1" "$2] = $4" "$5; next }
  { key = $1" "$2
    printf "| %-3s | %-16s | %9.1f (%s) | %9.1f (%s) | %7.1fx |\n", $1, $2, ms[key], mss[key], $3, $4" "$5, ms[key] / $3 }
  BEGIN { print "| PL  | request          | libmodsecurity 3.0.9 | rampart         | ratio    |"
          print "|-----|------------------|----------------------|-----------------|----------|" }
' "$WORK/modsec.txt" "$WORK/rampart.txt"

if [ "$CRITERION" = 1 ]; then
  echo
  cargo bench -q -p rampart-waf --bench transaction -- --noplot 2>&1 | grep -E "^waf_|time:|thrpt:" || true
fi
