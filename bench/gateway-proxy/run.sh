#!/usr/bin/env bash
# Plain-proxy benchmark, side by side in one run: wrk through the rampart gateway and through
# nginx (Debian), both in front of the same static upstream on this machine. Prints req/s and
# p99 latency for each and the ratio rampart/nginx.
#   bench/gateway-proxy/run.sh            (DURATION=15s CONNECTIONS=50 THREADS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
UPSTREAM_PORT=18080 NGINX_PORT=18081 RAMPART_PORT=18082

install_missing() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing wrk nginx
cargo build --release --locked -p rampart >/dev/null 2>&1

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
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
./target/release/rampart --config "$work/rampart.toml" --data-dir "$work/rampart-data" gateway \
  --listen 127.0.0.1:$RAMPART_PORT --upstream http://127.0.0.1:$UPSTREAM_PORT --dangerous-plaintext \
  >"$work/rampart.out" 2>"$work/rampart.err" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:$RAMPART_PORT/ && break; sleep 0.1; done
curl -fs -o /dev/null http://127.0.0.1:$NGINX_PORT/

measure() { # $1 label, $2 port -> "label req/s p99"
  local out rps p99
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Host: localhost' "http://127.0.0.1:$2/")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  printf '%-8s %12s req/s   p99 %s\n' "$1" "$rps" "$p99" >&2
  echo "$rps"
}
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, static upstream (nginx), same machine, same run:" >&2
nginx_rps=$(measure nginx $NGINX_PORT)
rampart_rps=$(measure rampart $RAMPART_PORT)
awk -v r="$rampart_rps" -v n="$nginx_rps" 'BEGIN { printf "ratio rampart/nginx: %.2f\n", r / n }'
