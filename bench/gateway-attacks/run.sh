#!/usr/bin/env bash
# Availability under attack, side by side in one run: the rampart gateway, nginx with Debian
# defaults and nginx hardened, each in front of the same static upstream (nginx), each hit in
# turn by slowhttptest slow headers / slow body / slow read and an HTTP/2 rapid-reset flood
# (CVE-2023-44487), while
#   - a legitimate probe (curl from 127.0.0.2) asks for / every 0.5 s for the whole attack,
#   - a wrk load (-t1 -c20 -d20s, from 127.0.0.3 via the bindsrc.c LD_PRELOAD shim: loopback
#     connections otherwise all come from 127.0.0.1, the attacker) runs during the attack,
#   - `ss` counts, every second, the established connections the attacker (127.0.0.1) holds on
#     the server side.
# Prints one markdown table row per (target, attack). Loopback only; each attack <= 60 s.
#   bench/gateway-attacks/run.sh
#   TARGETS="rampart" ATTACKS="slow-read" bench/gateway-attacks/run.sh   (a subset)
#   SLOWHTTPTEST_NICE=19 bench/gateway-attacks/run.sh   (diagnostic: slowhttptest deprioritized, see below)
# Raw logs (wrk, slowhttptest, probes, ss samples, rampart stderr) stay in $LOGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
TARGETS=${TARGETS:-"rampart nginx-default nginx-hardened"}
ATTACKS=${ATTACKS:-"slow-headers slow-body slow-read rapid-reset"}
ATTACK_SECS=${ATTACK_SECS:-45}  # every attack, probe loop and ss sampler lasts this long
WRK_DELAY=${WRK_DELAY:-5}       # wrk starts this long after the attack, runs WRK_SECS
WRK_SECS=${WRK_SECS:-20}
# The baseline (no attack) is the median of this many wrk runs: a single 20-s run varies by
# +-6% on this machine, and every attack's ratio divides by it.
BASELINE_RUNS=${BASELINE_RUNS:-3}
RR_CONNECTIONS=${RR_CONNECTIONS:-8}
# SLOWHTTPTEST_NICE (a diagnostic; default 0, the tool at normal priority) runs slowhttptest at
# that niceness. Its poll loop busy-waits once any of its sockets has been closed: it zeroes the
# closed socket's `events` but leaves its fd in the pollfd array, so every poll() returns at once
# with POLLNVAL (slowhttptest 1.8.2, run_test; perf stat: ~22,000 polls a second during slow
# read). That happens against every server, even one that closes nothing, because the tool's own
# probe socket is closed after each answer; it burns 0.5-1 of the two cores, which it takes from
# wrk, the legitimate load on the same cores, where a remote attacker's CPU would not be the
# server's. With 19 it still spins on idle CPU and sends the same traffic (bench/README.md,
# sessions 11 and 12). The rapid-reset client always runs at normal priority: its CPU is its flood.
SLOWHTTPTEST_NICE=${SLOWHTTPTEST_NICE:-0}
UPSTREAM_PORT=19180 PORT=19181 NGINX_H2_PORT=19182
LOGS=${LOGS:-$(mktemp -d /tmp/gateway-attacks.XXXXXX)}
mkdir -p "$LOGS"

# slowhttptest needs many sockets; without CAP_SYS_RESOURCE the hard limit is the ceiling.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

install_missing() { # command:package ...
  local missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing wrk:wrk nginx:nginx slowhttptest:slowhttptest curl:curl ss:iproute2 cc:gcc
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p rampart >/dev/null
for port in $UPSTREAM_PORT $PORT $NGINX_H2_PORT; do
  if ss -Htln "( sport = :$port )" | grep -q .; then echo "port $port is in use" >&2; exit 1; fi
done

work=$(mktemp -d)
chmod 755 "$work"  # nginx workers (nobody) read the upstream's files
# wrk must come from its own address (127.0.0.3), not the attacker's 127.0.0.1: see bindsrc.c
cc -shared -fPIC -O2 -o "$work/bindsrc.so" bench/gateway-attacks/bindsrc.c -ldl
RAMPART_PID=""
bg_pids=()  # the current scenario's attack, probe and ss loops
running_nginx=()
cleanup() {
  for pid in "${bg_pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  [ -z "$RAMPART_PID" ] || kill "$RAMPART_PID" 2>/dev/null || true
  for prefix in "${running_nginx[@]}"; do nginx -p "$prefix" -c nginx.conf -s stop 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the upstream: static nginx, never the bottleneck --------------------------------------
mkdir -p "$work/upstream/logs" "$work/www"
head -c 262144 /dev/zero | tr '\0' 'x' >"$work/www/big"  # 256 KiB, for the slow-read attack
cat >"$work/upstream/nginx.conf" <<CONF
worker_processes auto;
worker_rlimit_nofile $NOFILE;
pid $work/upstream/nginx.pid;
error_log $work/upstream/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    location / { default_type text/plain; return 200 'hello\n'; }
    location = /big { root $work/www; default_type application/octet-stream; }
  }
}
CONF
nginx -p "$work/upstream" -c nginx.conf
running_nginx+=("$work/upstream")

# --- the targets -----------------------------------------------------------------------------
# Both nginx variants start from Debian's /etc/nginx/nginx.conf (worker_processes auto,
# worker_connections 768, default timeouts: client_header/body 60 s, send 60 s, keepalive 75 s),
# minus the access log (rampart logs no access lines at level warn either), as a reverse proxy
# with upstream keep-alive (without it nginx exhausts loopback ports at wrk rates). HTTP/2 is
# served in cleartext (prior knowledge) on a second port: nginx 1.22 cannot serve HTTP/1.1 and
# h2c on one port; rampart serves both on one.
nginx_target_conf() { # $1 prefix, $2 events block, $3 extra main-context lines, $4 extra http lines
  mkdir -p "$1/logs"
  cat >"$1/nginx.conf" <<CONF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
$3
events { $2 }
http {
  sendfile on;
  tcp_nopush on;
  types_hash_max_size 2048;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  gzip on;
  $4
  upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
  server {
    listen $PORT;
    listen $NGINX_H2_PORT http2;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
CONF
}
nginx_target_conf "$work/nginx-default" "worker_connections 768;" "" ""
# Hardened as BRIEF.md section 4 describes: a whole-header deadline of 5 s (nginx arms
# client_header_timeout once per request head) and many more connection slots, plus short body,
# send and keep-alive timeouts; reset_timedout_connection frees timed-out sockets at once.
nginx_target_conf "$work/nginx-hardened" "worker_connections 16384;" "worker_rlimit_nofile $NOFILE;" "
  client_header_timeout 5s;
  client_body_timeout 5s;
  send_timeout 5s;
  keepalive_timeout 10s;
  reset_timedout_connection on;"

# The WAF is off: the peers here are plain nginx proxies (no ModSecurity), and what is measured
# is the gateway's shields. (With crs = "auto" the gateway would load Debian's CRS if installed.)
cat >"$work/rampart.toml" <<CONF
[log]
level = "warn"
[admin]
listen = "127.0.0.1:0"
[waf]
crs = "off"
CONF

ADMIN_URL=""
start_target() { # $1 target, $2 label for logs
  case $1 in
    rampart)
      rm -rf "$work/rampart-data"
      # In a session of its own, as nginx is once it daemonizes (see bench/gateway-proxy/run.sh).
      setsid "${CARGO_TARGET_DIR:-target}"/release/rampart --config "$work/rampart.toml" --data-dir "$work/rampart-data" gateway \
        --listen 0.0.0.0:$PORT --upstream http://127.0.0.1:$UPSTREAM_PORT --dangerous-plaintext \
        >"$LOGS/$2.rampart.out" 2>"$LOGS/$2.rampart.err" &
      RAMPART_PID=$!
      for _ in $(seq 1 300); do
        grep -q "rampart gateway listening on" "$LOGS/$2.rampart.out" 2>/dev/null && break
        kill -0 $RAMPART_PID 2>/dev/null || { cat "$LOGS/$2.rampart.err" >&2; exit 1; }
        sleep 0.1
      done
      ADMIN_URL=$(grep -o 'admin http://[0-9.:]*' "$LOGS/$2.rampart.out" | cut -d' ' -f2)
      ;;
    nginx-*)
      nginx -p "$work/$1" -c nginx.conf
      running_nginx+=("$work/$1")
      ;;
  esac
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null -H 'Host: localhost' http://127.0.0.1:$PORT/ && return 0
    sleep 0.1
  done
  echo "$1 did not come up" >&2; exit 1
}

stop_target() { # $1 target
  case $1 in
    rampart)
      kill $RAMPART_PID 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 $RAMPART_PID 2>/dev/null || break; sleep 0.1; done
      kill -9 $RAMPART_PID 2>/dev/null || true
      RAMPART_PID=""
      ;;
    nginx-*)
      nginx -p "$work/$1" -c nginx.conf -s stop 2>/dev/null || true
      for _ in $(seq 1 100); do [ -e "$work/$1/nginx.pid" ] || break; sleep 0.1; done
      running_nginx=("$work/upstream")
      ;;
  esac
  # let the kernel forget the last scenario's sockets before the next one
  for _ in $(seq 1 50); do
    [ "$(ss -Htn state established "( sport = :$PORT or sport = :$NGINX_H2_PORT )" | wc -l)" -eq 0 ] && break
    sleep 0.2
  done
}

# --- measurement helpers ------------------------------------------------------------------------
run_wrk() { # $1 log file -> "req/s non2xx errors"
  BIND_SRC=127.0.0.3 LD_PRELOAD="$work/bindsrc.so" \
    wrk -t1 -c20 -d${WRK_SECS}s --latency -H 'Host: localhost' "http://127.0.0.3:$PORT/" >"$1" 2>&1 || true
  local rps non2xx errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$1")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$1")
  errors=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' "$1")
  echo "${rps:-0} ${non2xx:-0} ${errors:-0}"
}

probe_loop() { # $1 output file; one curl every 0.5 s from 127.0.0.2, each given 5 s
  local n=$((ATTACK_SECS * 2))
  for _ in $(seq 1 $n); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --interface 127.0.0.2 -m 5 \
      -H 'Host: localhost' "http://127.0.0.2:$PORT/" >>"$1" 2>/dev/null &
    sleep 0.5
  done
  wait
}

ss_loop() { # $1 output file, $2 attacked port: established connections the attacker holds
  # (and, in $1.legit, those of wrk from 127.0.0.3 and the probe from 127.0.0.2: a sanity check)
  for _ in $(seq 1 $((ATTACK_SECS + 2))); do
    ss -Htn state established "( sport = :$2 and dst 127.0.0.1 )" | wc -l >>"$1"
    ss -Htn state established "( sport = :$PORT and ( dst 127.0.0.3 or dst 127.0.0.2 ) )" | wc -l >>"$1.legit"
    sleep 1
  done
}

run_attack() { # $1 attack, $2 target port, $3 log prefix
  local url="http://127.0.0.1:$2/"
  local nice=(nice -n "$SLOWHTTPTEST_NICE")
  case $1 in
    slow-headers)
      "${nice[@]}" slowhttptest -H -c 4000 -r 400 -l "$ATTACK_SECS" -u "$url" -g -o "$3.slowhttptest" >"$3.attack.log" 2>&1 ;;
    slow-body)
      "${nice[@]}" slowhttptest -B -i 3 -x 2 -c 2000 -r 200 -l "$ATTACK_SECS" -u "$url" -g -o "$3.slowhttptest" >"$3.attack.log" 2>&1 ;;
    slow-read)
      "${nice[@]}" slowhttptest -X -c 1000 -r 200 -w 512 -y 1024 -n 5 -z 32 -k 3 -l "$ATTACK_SECS" -u "${url}big" \
        -g -o "$3.slowhttptest" >"$3.attack.log" 2>&1 ;;
    rapid-reset)
      python3 "$repo/bench/gateway-attacks/rapid_reset.py" 127.0.0.1 "$2" "$ATTACK_SECS" "$RR_CONNECTIONS" \
        >"$3.attack.log" 2>&1 ;;
  esac
  # The attacking tool's CPU time (this background shell's waited-for children): on two cores,
  # what the attacker burns is taken from the legitimate load as well. `times` runs in this
  # shell, not in a pipeline's subshell, whose children are its own (none).
  times >"$3.times"
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, k, /[ms]/); printf "%.1f\n", u[1] * 60 + u[2] + k[1] * 60 + k[2] }' \
    "$3.times" >"$3.attacker-cpu"
}

attack_summary() { # $1 attack, $2 log prefix: the attacker's own view, for the notes column
  if [ "$1" = rapid-reset ]; then
    python3 - "$2.attack.log" <<'PY'
import json, sys
try:
    s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    print("client failed"); sys.exit()
goaway = ",".join(f"{k}:{v}" for k, v in s["goaway"].items()) or "none"
print(f"{s['streams_per_s']} streams/s written, {s['connections']} conns, GOAWAY {goaway}, "
      f"{s['closed_without_goaway']} closed w/o GOAWAY, {s['connect_failures']} connect fails, "
      f"attacker CPU {s['client_cpu_s']} s")
PY
  else
    # slowhttptest CSV: seconds,closed,pending,connected,service available
    awk -F, 'NR > 1 { if ($4 > m) m = $4; c = $2 } END { printf "attacker saw max %d connected, %d closed at end", m, c }' \
      "$2.slowhttptest.csv" 2>/dev/null || echo "no slowhttptest csv"
    if [ -s "$2.attacker-cpu" ]; then printf ', attacker CPU %s s' "$(cat "$2.attacker-cpu")"; fi
  fi
}

rampart_counters() { # shed / slow-client counters from /metrics, for the notes column
  local token
  token=$(cat "$work/rampart-data/credentials/admin-token" 2>/dev/null) || return 0
  curl -s -H "Authorization: Bearer $token" "$ADMIN_URL/metrics" |
    awk '/^rampart_gateway_(connections_shed|slow_clients|shed)_total/ { n = $1; sub(/^rampart_gateway_/, "", n); printf "%s %s; ", n, $2 }'
}

server_cpu_ticks() { # $1 target: user+system clock ticks of the target's processes so far
  local pids_now
  if [ "$1" = rampart ]; then pids_now=$RAMPART_PID
  else pids_now=$(pgrep -P "$(cat "$work/$1/nginx.pid")" | tr '\n' ' '); fi
  for pid in $pids_now; do cat "/proc/$pid/stat" 2>/dev/null; done | awk '{ t += $14 + $15 } END { print t + 0 }'
}
CLK_TCK=$(getconf CLK_TCK)
cores() { awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" -v s="$3" 'BEGIN { printf "%.2f", (b - a) / hz / s }'; }

# The ss samples: max, median of the seconds in which the attacker held any, and how many such
# seconds (slowhttptest never reopens closed sockets, so once evicted its pressure is gone).
held() { sort -n "$1" | awk '$1 > 0 { a[++n] = $1 } END { if (n) printf "%d / %d / %d s", a[n], a[int((n + 1) / 2)], n; else print "0 / 0 / 0 s" }'; }

results="$LOGS/results.md"
{
  echo "| target | attack | probe answered | probe p50 / max s | wrk req/s (baseline) | % of baseline | wrk non-2xx / errors | attacker conns held (max / median / time) | server CPU (cores) | notes |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$results"

echo "logs: $LOGS; nofile $NOFILE; $(nproc) cores; rampart $(git rev-parse --short HEAD); slowhttptest at niceness $SLOWHTTPTEST_NICE" >&2
for target in $TARGETS; do
  start_target "$target" "$target.baseline"
  cpu0=$(server_cpu_ticks "$target")
  base_runs=() base_non2xx=0 base_errors=0
  for run in $(seq 1 "$BASELINE_RUNS"); do
    read -r rps non2xx errors < <(run_wrk "$LOGS/$target.baseline.$run.wrk")
    base_runs+=("$rps") base_non2xx=$((base_non2xx + non2xx)) base_errors=$((base_errors + errors))
  done
  base_cpu=$(cores "$cpu0" "$(server_cpu_ticks "$target")" $((WRK_SECS * BASELINE_RUNS)))
  base_rps=$(printf '%s\n' "${base_runs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  echo "$target baseline: $base_rps req/s (median of ${base_runs[*]}; non-2xx $base_non2xx, errors $base_errors), server CPU $base_cpu cores" >&2
  echo "| $target | (baseline, no attack) | - | - | $base_rps | 100% | $base_non2xx / $base_errors | - | $base_cpu | median of $BASELINE_RUNS runs: ${base_runs[*]} |" >>"$results"
  stop_target "$target"
  for attack in $ATTACKS; do
    prefix="$LOGS/$target.$attack"
    attack_port=$PORT
    [ "$attack" = rapid-reset ] && [ "$target" != rampart ] && attack_port=$NGINX_H2_PORT
    start_target "$target" "$target.$attack"
    : >"$prefix.probe" ; : >"$prefix.ss"
    cpu0=$(server_cpu_ticks "$target")
    run_attack "$attack" "$attack_port" "$prefix" &
    attack_pid=$!
    probe_loop "$prefix.probe" &
    probe_pid=$!
    ss_loop "$prefix.ss" "$attack_port" &
    ss_pid=$!
    bg_pids=($attack_pid $probe_pid $ss_pid)
    sleep "$WRK_DELAY"
    read -r rps non2xx errors < <(run_wrk "$prefix.wrk")
    wait $attack_pid $probe_pid $ss_pid || true
    bg_pids=()
    cpu=$(cores "$cpu0" "$(server_cpu_ticks "$target")" "$ATTACK_SECS")
    notes=$(attack_summary "$attack" "$prefix")
    if [ "$target" = rampart ]; then
      counters=$(rampart_counters)
      counters=${counters%; }
      notes="$notes; ${counters:-no shed/slow-client counters}"
    fi
    if [ "$target" = rampart ] && [ -s "$LOGS/$target.$attack.rampart.err" ]; then
      notes="$notes; stderr: $(wc -l <"$LOGS/$target.$attack.rampart.err") lines"
    fi
    stop_target "$target"
    answered=$(awk '$1 == 200' "$prefix.probe" | wc -l)
    total=$(wc -l <"$prefix.probe")
    lat=$(awk '$1 == 200 { print $2 }' "$prefix.probe" | sort -n |
      awk '{ a[NR] = $1 } END { if (NR) printf "%.3f / %.3f", a[int((NR + 1) / 2)], a[NR]; else print "-" }')
    pct=$(awk -v r="$rps" -v b="$base_rps" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * r / b; else print "-" }')
    row="| $target | $attack | $answered/$total | $lat | $rps ($base_rps) | $pct | $non2xx / $errors | $(held "$prefix.ss") | $cpu | ${notes%; } |"
    echo "$row" >>"$results"
    echo "$row" >&2
  done
done
echo
cat "$results"
