#!/usr/bin/env bash
# WAF proxy benchmark, side by side in one run: wrk through rampart + OWASP CRS v4 (paranoia 1,
# blocking) and through nginx + ModSecurity v3 + the same CRS v4 (the peer script
# ../shared/peers/nginx-modsec.sh), both in front of the same static nginx upstream. Reports
# req/s, p99 and server CPU per request (process utime+stime over the run / requests: the figure
# that survives a noisy shared machine) for each, and the ratios.
#   bench/gateway-waf/run.sh        (ROUNDS=3 DURATION=15s CONNECTIONS=50 THREADS=2 by default;
#                                    BUILD=0 skips the cargo build; rounds alternate which server
#                                    runs first, and the ratios are of the medians)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SHARED=${RAMPART_SHARED_DIR:-$(cd .. && pwd)/shared}
CRS=$SHARED/crs/v4.28.0
PEER=$SHARED/peers/nginx-modsec.sh
RAMPART_PORT=18182
TARGET=${TARGET:-'/index.html?id=123&name=alice&page=2&sort=desc'}
export PEER_DIR=$(mktemp -d) WAF_PORT=18180 PLAIN_PORT=18181 STATIC_PORT=18191 UPSTREAM=static PARANOIA=1

need=()
for tool in wrk nginx curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || need+=(libnginx-mod-http-modsecurity)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-http-modsecurity wrk curl >/dev/null
fi
[ "${BUILD:-1}" = 0 ] || cargo build --release --locked -p rampart >/dev/null 2>&1
RAMPART=${CARGO_TARGET_DIR:-target}/release/rampart

work=$(mktemp -d)
cleanup() {
  [ -n "${rampart_pid:-}" ] && kill "$rampart_pid" 2>/dev/null || true
  bash "$PEER" stop >/dev/null 2>&1 || true
  rm -rf "$work" "$PEER_DIR"
}
trap cleanup EXIT

# The peer: nginx + libmodsecurity3 + CRS v4 (its setup file is a copy of the example, as CRS says).
cp "$CRS/crs-setup.conf.example" "$work/crs-setup.conf"
CRS_SETUP="$work/crs-setup.conf" CRS_RULES="$CRS/rules" CRS_BEFORE= CRS_AFTER= bash "$PEER" start >/dev/null

cat > "$work/rampart.toml" <<CONF
[log]
level = "warn"
[admin]
listen = "127.0.0.1:0"
[waf]
crs = "$CRS"
paranoia_level = 1
CONF
# In a session of its own, as nginx is once it daemonizes (see bench/gateway-proxy/run.sh).
setsid "$RAMPART" --config "$work/rampart.toml" --data-dir "$work/rampart-data" gateway \
  --listen 127.0.0.1:$RAMPART_PORT --upstream http://127.0.0.1:$STATIC_PORT --dangerous-plaintext \
  >"$work/rampart.out" 2>"$work/rampart.err" &
rampart_pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null -H 'Host: localhost' http://127.0.0.1:$RAMPART_PORT/ && break; sleep 0.1; done

code() { curl -s -o /dev/null -w '%{http_code}' -H 'Host: localhost' -H 'Accept: text/html' -A 'bench' "$@"; }
for port in $WAF_PORT $RAMPART_PORT; do
  clean=$(code "http://127.0.0.1:$port$TARGET")
  sqli=$(code "http://127.0.0.1:$port/?id=1%27%20OR%20%271%27%3D%271")
  echo "port $port: clean GET -> $clean, SQLi -> $sqli" >&2
  [ "$clean" = 200 ] && [ "$sqli" = 403 ] || { echo "port $port does not behave as a WAF" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)
ticks_of() { local t=0; for pid in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$pid/stat"))); done; echo "$t"; }
nginx_workers() { pgrep -P "$(cat "$PEER_DIR/nginx.pid")" | tr '\n' ' '; }

measure() { # $1 label, $2 port, $3.. pids -> prints a line, echoes "rps cpu_us_per_req"
  local label=$1 port=$2; shift 2
  local t0 t1 out rps reqs p99
  t0=$(ticks_of "$@")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Host: localhost' \
    -H 'Accept: text/html,application/xhtml+xml' -H 'User-Agent: Mozilla/5.0 (bench)' "http://127.0.0.1:$port$TARGET")
  t1=$(ticks_of "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$hz" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
  printf '%-22s %10s req/s   p99 %-9s cpu %7s us/req   non-2xx %s\n' "$label" "$rps" "$p99" "$cpu" "${non2xx:-0}" >&2
  echo "$rps $cpu"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION GET $TARGET, CRS v4.28.0 PL1 blocking, static upstream, same run:" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    measure "nginx+ModSecurity+CRS" $WAF_PORT $(nginx_workers) >> "$work/peer.tsv"
    measure "rampart+CRS" $RAMPART_PORT "$rampart_pid" >> "$work/ours.tsv"
  else
    measure "rampart+CRS" $RAMPART_PORT "$rampart_pid" >> "$work/ours.tsv"
    measure "nginx+ModSecurity+CRS" $WAF_PORT $(nginx_workers) >> "$work/peer.tsv"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
median() { # $1 file, $2 column
  awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END { printf "%s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
peer_rps=$(median "$work/peer.tsv" 1) peer_cpu=$(median "$work/peer.tsv" 2)
ours_rps=$(median "$work/ours.tsv" 1) ours_cpu=$(median "$work/ours.tsv" 2)
echo "medians of $ROUNDS rounds: nginx+ModSecurity+CRS $peer_rps req/s, $peer_cpu us/req; rampart+CRS $ours_rps req/s, $ours_cpu us/req" >&2
awk -v r="$ours_rps" -v n="$peer_rps" -v rc="$ours_cpu" -v nc="$peer_cpu" \
  'BEGIN { printf "ratio req/s rampart/nginx+modsec: %.1fx   CPU per request nginx+modsec/rampart: %.1fx\n", r / n, nc / rc }'
