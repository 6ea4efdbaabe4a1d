#!/usr/bin/env bash
# The whole test suite, on a fresh machine: makes sure the services and tools the tests use are
# there, then runs every test in the workspace. README.md's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# PostgreSQL (storage conformance and crash tests run against the real server).
export RAMPART_TEST_POSTGRES_URL="${RAMPART_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! command -v pg_isready >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  log "installing PostgreSQL"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -d test -qAtc 'select 1' >/dev/null

# Redis: the rate-limit tests start private redis-server processes (and stop them mid-test).
if ! command -v redis-server >/dev/null; then
  log "installing Redis"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# SoftHSM2: the vault's PKCS#11 seal is tested against a real token (the tests make private
# token directories; they fail when SoftHSM2 is missing and CI is set).
if ! command -v softhsm2-util >/dev/null || [ ! -f /usr/lib/softhsm/libsofthsm2.so ]; then
  log "installing SoftHSM2"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi

# Shared test data (CRS, specs) lives beside the checkout.
export RAMPART_SHARED_DIR="${RAMPART_SHARED_DIR:-$(cd .. && pwd)/shared}"

# Debian's CRS 3.3.4 (the rule set users already have) is loaded by the SecLang and WAF tests.
if [ ! -f /usr/share/modsecurity-crs/owasp-crs.load ] || [ ! -f /etc/modsecurity/crs/crs-setup.conf ]; then
  log "installing modsecurity-crs"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq modsecurity-crs >/dev/null
fi

# The test OIDC provider (node oidc-provider, tools/test-idp in the shared data): the identity
# tests run it from RAMPART_TEST_IDP_DIR, next to its node_modules, installed here once.
export RAMPART_TEST_IDP_DIR="${RAMPART_TEST_IDP_DIR:-${TMPDIR:-/tmp}/rampart-test-idp}"
if [ ! -f "$RAMPART_TEST_IDP_DIR/node_modules/oidc-provider/package.json" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing node and npm"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  log "installing the test IdP's node modules in $RAMPART_TEST_IDP_DIR"
  mkdir -p "$RAMPART_TEST_IDP_DIR"
  cp "$RAMPART_SHARED_DIR/tools/test-idp/idp.mjs" "$RAMPART_SHARED_DIR/tools/test-idp/package.json" "$RAMPART_TEST_IDP_DIR/"
  (cd "$RAMPART_TEST_IDP_DIR" && npm install --silent --no-audit --no-fund)
fi

# Azure SDK clients, one venv for the Python suites: crates/rampart/tests/identity.rs runs
# tests/python/test_managed_identity.py, crates/rampart/tests/vault_sdk.rs runs pytest on
# tests/python/test_vault_secrets.py, with this interpreter; crates/rampart/tests/vault_schema.rs
# runs schemathesis (pinned: its checks and generation change between releases) from it.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/rampart/venv-identity"
schemathesis_version=4.32.5
if ! "$venv/bin/python" -c 'import azure.identity, azure.keyvault.secrets, azure.keyvault.keys, azure.keyvault.certificates, cryptography, pytest' 2>/dev/null \
  || [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $schemathesis_version" ]; then
  log "installing azure-identity, azure-keyvault-{secrets,keys,certificates}, cryptography, pytest and schemathesis in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q azure-identity azure-keyvault-secrets azure-keyvault-keys \
    azure-keyvault-certificates cryptography pytest "schemathesis==$schemathesis_version"
fi
export RAMPART_TEST_PYTHON="$venv/bin/python"

log "running the test suite"
cargo test --workspace --locked "$@"
