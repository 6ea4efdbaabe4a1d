#!/usr/bin/env bash
# bench/waf/run.sh - Rampart's WAF vs libmodsecurity 3 (Debian libmodsecurity3 3.0.9), side by
# side, in one run: the same OWASP CRS v4 files, the same engine settings
# (modsecurity.conf-recommended, SecRuleEngine On), the same four requests, CPU microseconds
# per full transaction (phases 1-5), at paranoia levels 1 and 4. Then the criterion benchmark.
#
#   bench/waf/run.sh                  # side-by-side table + criterion
#   bench/waf/run.sh --no-criterion   # side-by-side table only
#
# Environment: RAMPART_ITERATIONS (default 20000), MODSEC_ITERATIONS (default 2000), ROUNDS
# (default 3: both engines alternate, each row keeps its lowest CPU time),
# RAMPART_CRS_DIR (default ../shared/crs/v4.28.0), CARGO_TARGET_DIR.
# Needs: apt-get install libmodsecurity-dev gcc
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export RAMPART_CRS_DIR=${RAMPART_CRS_DIR:-$(cd "$ROOT/../shared/crs/v4.28.0" && pwd)}
RAMPART_ITERATIONS=${RAMPART_ITERATIONS:-20000}
MODSEC_ITERATIONS=${MODSEC_ITERATIONS:-2000}
ROUNDS=${ROUNDS:-3}
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

echo "== $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD) on $(nproc) cores, $ROUNDS rounds" >&2
# Both engines alternate, ROUNDS times; each row keeps its lowest CPU time (the least disturbed
# by whatever else runs on the machine).
: >"$WORK/modsec.txt"
: >"$WORK/rampart.txt"
for round in $(seq "$ROUNDS"); do
  for pl in 1 4; do
    "$WORK/modsec_bench" "$WORK/modsec-pl$pl.conf" "PL$pl" "$MODSEC_ITERATIONS" "${REQS[@]}" >>"$WORK/modsec.txt"
  done
  "$BIN" run "$RAMPART_ITERATIONS" >>"$WORK/rampart.txt"
  echo "round $round done" >&2
done

echo
echo "CPU microseconds per transaction, lowest of $ROUNDS rounds (status, logged rules):"
awk '
  FILENAME ~ /modsec/ { k = $1" "$2; if (!(k in ms) || $3 < ms[k]) ms[k] = $3; mss[k] = $4" "$5; next }
  { k = $1" "$2; if (!(k in rs)) order[++n] = k; if (!(k in rs) || $3 < rs[k]) rs[k] = $3; rss[k] = $4" "$5 }
  END {
    print "| PL  | request          | libmodsecurity 3.0.9 | rampart         | ratio    |"
    print "|-----|------------------|----------------------|-----------------|----------|"
    for (i = 1; i <= n; i++) { k = order[i]; split(k, p, " ")
      printf "| %-3s | %-16s | %9.1f (%s) | %9.1f (%s) | %7.1fx |\n", p[1], p[2], ms[k], mss[k], rs[k], rss[k], ms[k] / rs[k] }
  }
' "$WORK/modsec.txt" "$WORK/rampart.txt"

if [ "$CRITERION" = 1 ]; then
  echo
  cargo bench -q -p rampart-waf --bench transaction -- --noplot 2>&1 | grep -E "^waf_|time:|thrpt:" || true
fi
