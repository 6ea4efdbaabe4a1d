#!/usr/bin/env bash
# Plain-proxy benchmark, side by side in one run: wrk through the rampart gateway and through
# nginx (Debian), both in front of the same static upstream on this machine, alternating
# (nginx, rampart, nginx, rampart, ...) so that both see the same machine load. Prints req/s,
# p99 latency and server CPU per request (process utime+stime over the run / requests) for
# every round, then min and median per server, the ratios of the medians, and the load average.
#   bench/gateway-proxy/run.sh      (ROUNDS=3 DURATION=15s CONNECTIONS=50 THREADS=2 by default;
#                                    BUILD=0 skips the cargo build; BEFORE=path/to/older/rampart
#                                    also measures that binary in every round, for before/after
#                                    figures from the same run)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080} NGINX_PORT=${NGINX_PORT:-18081} RAMPART_PORT=${RAMPART_PORT:-18082}
RAMPART=${CARGO_TARGET_DIR:-target}/release/rampart
BEFORE=${BEFORE:-} BEFORE_PORT=${BEFORE_PORT:-18083}

install_missing() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing wrk nginx curl
[ "${BUILD:-1}" = 0 ] || cargo build --release --locked -p rampart >/dev/null 2>&1

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Let it exit before its data directory is removed.
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  nginx -p "$work/upstream" -c nginx.conf -s stop 2>/dev/null || true
  nginx -p "$work/proxy" -c nginx.conf -s stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

nginx_conf() { # $1 prefix dir, $2 server block
  mkdir -p "$1/logs"
  cat > "$1/nginx.conf" <<CONF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  $2
}
CONF
}

nginx_conf "$work/upstream" "server { listen 127.0.0.1:$UPSTREAM_PORT; location / { default_type text/plain; return 200 'hello from the upstream\n'; } }"
nginx_conf "$work/proxy" "upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
nginx -p "$work/upstream" -c nginx.conf
nginx -p "$work/proxy" -c nginx.conf

cat > "$work/rampart.toml" <<CONF
[log]
level = "warn"
[admin]
listen = "127.0.0.1:0"
[waf]
crs = "off"
CONF
# Each server runs in a session of its own, as nginx does when it daemonizes: the kernel
# (autogroup scheduling) shares the CPU between sessions first, so a server left in this
# script's session would split one share with wrk while nginx has a share to itself.
# (setsid execs in place here: a background job of a script is no process-group leader, so
# $! is the server's own pid.)
setsid "$RAMPART" --config "$work/rampart.toml" --data-dir "$work/rampart-data" gateway \
  --listen 127.0.0.1:$RAMPART_PORT --upstream http://127.0.0.1:$UPSTREAM_PORT --dangerous-plaintext \
  >"$work/rampart.out" 2>"$work/rampart.err" &
rampart_pid=$!
pids+=("$rampart_pid")
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:$RAMPART_PORT/ && break; sleep 0.1; done
if [ -n "$BEFORE" ]; then
  setsid "$BEFORE" --config "$work/rampart.toml" --data-dir "$work/before-data" gateway \
    --listen 127.0.0.1:$BEFORE_PORT --upstream http://127.0.0.1:$UPSTREAM_PORT --dangerous-plaintext \
    >"$work/before.out" 2>"$work/before.err" &
  before_pid=$!
  pids+=("$before_pid")
  for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:$BEFORE_PORT/ && break; sleep 0.1; done
fi
curl -fs -o /dev/null http://127.0.0.1:$NGINX_PORT/
sleep 0.5
nginx_workers=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" | tr '\n' ' ')

hz=$(getconf CLK_TCK)
ticks_of() { local t=0; for pid in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$pid/stat"))); done; echo "$t"; }
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

measure() { # $1 label, $2 port, $3.. server pids -> prints a line, echoes "rps p99_ms cpu_us_per_req"
  local label=$1 port=$2; shift 2
  local t0 t1 out rps reqs p99 cpu
  t0=$(ticks_of "$@")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Host: localhost' "http://127.0.0.1:$port/")
  t1=$(ticks_of "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$hz" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
  printf '  %-8s %10s req/s   p99 %7s ms   cpu %6s us/req\n' "$label" "$rps" "$p99" "$cpu" >&2
  echo "$rps $p99 $cpu"
}

stats() { # stdin: numbers -> "min median"
  # The trailing newline matters: `read` fails at a line without one, and `set -e` would end
  # the script before the summary.
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s\n", v[1], m }'
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, static upstream (nginx), same machine, same run, $ROUNDS rounds alternating:" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$work/nginx.tsv"; : > "$work/rampart.tsv"; : > "$work/before.tsv"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  # The order alternates (nginx first in odd rounds, rampart first in even ones), so that
  # neither server always runs second, after the other has warmed or loaded the machine.
  if [ $((round % 2)) = 1 ]; then
    measure nginx "$NGINX_PORT" $nginx_workers >> "$work/nginx.tsv"
    measure rampart "$RAMPART_PORT" "$rampart_pid" >> "$work/rampart.tsv"
  else
    measure rampart "$RAMPART_PORT" "$rampart_pid" >> "$work/rampart.tsv"
    measure nginx "$NGINX_PORT" $nginx_workers >> "$work/nginx.tsv"
  fi
  [ -z "$BEFORE" ] || measure before "$BEFORE_PORT" "$before_pid" >> "$work/before.tsv"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

summary() { # $1 file, $2 column -> "min median"
  awk -v c="$2" '{ print $c }' "$1" | stats
}
read -r n_rps_min n_rps_med < <(summary "$work/nginx.tsv" 1)
read -r r_rps_min r_rps_med < <(summary "$work/rampart.tsv" 1)
read -r n_p99_min n_p99_med < <(summary "$work/nginx.tsv" 2)
read -r r_p99_min r_p99_med < <(summary "$work/rampart.tsv" 2)
read -r n_cpu_min n_cpu_med < <(summary "$work/nginx.tsv" 3)
read -r r_cpu_min r_cpu_med < <(summary "$work/rampart.tsv" 3)
printf '%-8s req/s min %s median %s   p99 ms min %s median %s   cpu us/req min %s median %s\n' \
  nginx "$n_rps_min" "$n_rps_med" "$n_p99_min" "$n_p99_med" "$n_cpu_min" "$n_cpu_med"
printf '%-8s req/s min %s median %s   p99 ms min %s median %s   cpu us/req min %s median %s\n' \
  rampart "$r_rps_min" "$r_rps_med" "$r_p99_min" "$r_p99_med" "$r_cpu_min" "$r_cpu_med"
awk -v r="$r_rps_med" -v n="$n_rps_med" -v rp="$r_p99_med" -v np="$n_p99_med" -v rc="$r_cpu_med" -v nc="$n_cpu_med" \
  'BEGIN { printf "ratio rampart/nginx (medians): req/s %.2fx   p99 %.2fx   cpu per request %.2fx\n", r / n, rp / np, rc / nc }'
# Paired: each round's two runs are next to each other in time, so their ratio cancels the
# machine's slow swings that the medians above still carry. The interval is the
# distribution-free one for a median (order statistics, binomial): no assumption about how
# the ratios spread.
paste "$work/nginx.tsv" "$work/rampart.tsv" | awk '
  { ratio[NR] = $4 / $1; wins += ($4 > $1) }
  END {
    n = NR; for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ratio[j] < ratio[i]) { t = ratio[i]; ratio[i] = ratio[j]; ratio[j] = t }
    median = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
    # Largest k with P(Binomial(n, 1/2) < k) <= 5%: [ratio(k), ratio(n+1-k)] holds the median
    # with at least 90% confidence.
    k = 0; cdf = 0; p = 0.5 ^ n
    for (i = 0; i < n; i++) { if (cdf + p > 0.05) break; cdf += p; k = i + 1; p = p * (n - i) / (i + 1) }
    printf "paired rampart/nginx req/s (one ratio per round, sorted):"
    for (i = 1; i <= n; i++) printf " %.3f", ratio[i]
    printf "\npaired: median %.3fx, rampart ahead in %d of %d rounds", median, wins, n
    if (k >= 1) printf ", 90%% interval for the median [%.3f, %.3f]", ratio[k], ratio[n + 1 - k]
    printf "\n"
  }'
if [ -n "$BEFORE" ]; then
  read -r b_rps_min b_rps_med < <(summary "$work/before.tsv" 1)
  read -r b_p99_min b_p99_med < <(summary "$work/before.tsv" 2)
  read -r b_cpu_min b_cpu_med < <(summary "$work/before.tsv" 3)
  printf '%-8s req/s min %s median %s   p99 ms min %s median %s   cpu us/req min %s median %s\n' \
    before "$b_rps_min" "$b_rps_med" "$b_p99_min" "$b_p99_med" "$b_cpu_min" "$b_cpu_med"
fi
