#!/usr/bin/env bash
# Runs the multi-host layout of deploy/README.md on this one machine, every
# part a separate process on loopback with etcd as the registry and TLS on
# every batch link and to etcd (certificates from scripts/pki.sh), the
# judgers' query API over HTTPS asking for a token, etcd's authentication on
# and each kind of daemon its own etcd user:
#   etcd; central: bonnie-a, bonnie-b, judger-1, judger-2, an agent (dc central);
#   remote data centre: clyde-1 and an agent (dc remote).
# Registers Shop.Api with monitorctl, runs the demo app against both agents,
# and checks that its reports reach the judger that owns Shop.Api through
# both paths (agent -> Bonnie, agent -> Clyde -> Bonnie). Prints
# `monitorctl status` and `monitorctl judger list`, stops everything, and
# exits non-zero if any step failed. Used by the test suite (ctest
# deploy_multi_host) and by hand: deploy/run-local.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
for bin in agent/monitor-agent proxy/monitor-proxy judger/monitor-judger console/monitorctl examples/monitor-demo; do
  [ -x "$build/$bin" ] || { echo "run-local: $build/$bin is missing: build first (scripts/build.sh)" >&2; exit 1; }
done
command -v etcd >/dev/null || { echo "run-local: etcd is missing: scripts/install-deps.sh installs etcd-server" >&2; exit 1; }

data=$(mktemp -d /tmp/monitor-multihost.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); peer_port=$(free_port)
registry="etcd:127.0.0.1:$etcd_port"
pids=()
rings=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ring in "${rings[@]}"; do rm -f "/dev/shm$ring" "/dev/shm$ring.journal"; done
  [ "${KEEP:-}" = 1 ] || rm -rf "$data"
}
trap cleanup EXIT
fail() {
  echo "run-local: $*" >&2
  for log in "$data"/*.log; do echo "--- $log" >&2; tail -n 15 "$log" >&2; done
  exit 1
}
# Waits up to $1 seconds for the command after it to succeed.
await() {
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
ctl() { "$build/console/monitorctl" "$@" --registry "$registry"; }

echo "== a CA and a certificate per part (scripts/pki.sh)"
pki="$data/pki"
scripts/pki.sh init "$pki" > /dev/null
for part in "judger judger-1" "judger judger-2" "bonnie bonnie-a" "bonnie bonnie-b" "clyde clyde-1" \
            "agent agent-central" "agent agent-remote" "etcd etcd-1 --ip 127.0.0.1" "https query --ip 127.0.0.1"; do
  scripts/pki.sh issue "$pki" $part
done
# Toward etcd, each part and monitorctl shows a certificate without a common
# name (etcd's gateway refuses one with a name once its authentication is on).
for client in judger-judger-1 judger-judger-2 bonnie-bonnie-a bonnie-bonnie-b clyde-clyde-1 agent-agent-central \
              agent-agent-remote monitorctl; do
  scripts/pki.sh issue "$pki" registry "$client" > /dev/null
done
tls() { echo --tls-ca "$pki/ca.pem" --tls-cert "$pki/$1.pem" --tls-key "$pki/$1.key"; }
# The registry over TLS too: every part shows etcd its own certificate.
export MONITOR_REGISTRY_CA="$pki/ca.pem" MONITOR_REGISTRY_CERT="$pki/registry-monitorctl.pem" \
  MONITOR_REGISTRY_KEY="$pki/registry-monitorctl.key"
# A part's registry certificate, and its kind's etcd user (monitorctl auth daemon, below).
as() {
  local kind=${1%%-*}
  case $kind in bonnie|clyde) kind=proxy ;; esac
  echo env MONITOR_REGISTRY_CERT="$pki/registry-$1.pem" MONITOR_REGISTRY_KEY="$pki/registry-$1.key" \
    MONITOR_REGISTRY_USER="monitor-$kind" MONITOR_REGISTRY_PASSWORD="$kind-$$"
}

echo "== etcd on 127.0.0.1:$etcd_port (HTTPS, client certificates required)"
etcd --name multihost --data-dir "$data/etcd" --listen-client-urls "https://127.0.0.1:$etcd_port" \
  --advertise-client-urls "https://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "multihost=http://127.0.0.1:$peer_port" \
  --cert-file "$pki/etcd-etcd-1.pem" --key-file "$pki/etcd-etcd-1.key" --client-cert-auth \
  --trusted-ca-file "$pki/ca.pem" --logger zap --log-level error 2> "$data/etcd.log" &
pids+=($!)
await 20 ctl service list || fail "etcd did not answer"  # a command: run afresh each try

echo "== etcd's authentication on: root for monitorctl, a user per kind of daemon holding only what it needs"
for kind in agent proxy judger dashboard; do ctl auth daemon "$kind" --new-password "$kind-$$" > /dev/null; done
ctl auth enable --root-password "root-$$" > /dev/null
export MONITOR_REGISTRY_USER=root MONITOR_REGISTRY_PASSWORD="root-$$"
# The judgers' query API is HTTPS and asks every request for a credential: a
# user's token (an operator who sees every service, for monitorctl and this
# script), or a judger's certificate (the judgers reading each other's minutes).
ctl role add ops '*' > /dev/null
ctl user add carol --new-password "carol-$$" --role ops > /dev/null
MONITOR_TOKEN=$(ctl user token carol)
export MONITOR_TOKEN MONITOR_QUERY_CA="$pki/ca.pem"
https=(--https-cert "$pki/https-query.pem" --https-key "$pki/https-query.key" --query-ca "$pki/ca.pem")

echo "== judgers, Bonnies, a Clyde"
for j in 1 2; do
  $(as "judger-judger-$j") "$build/judger/monitor-judger" --name "judger-$j" --listen "127.0.0.1:$(free_port)" \
    --query-listen "127.0.0.1:$(free_port)" --data-dir "$data/judger-$j" --registry "$registry" \
    $(tls "judger-judger-$j") --query-tokens "${https[@]}" --no-self-metrics 2> "$data/judger-$j.log" &
  pids+=($!)
done
bonnies=()
for b in a b; do
  port=$(free_port)
  bonnies+=("127.0.0.1:$port")
  $(as "bonnie-bonnie-$b") "$build/proxy/monitor-proxy" --role bonnie --name "bonnie-$b" --listen "127.0.0.1:$port" --dc central \
    --registry "$registry" --data-dir "$data/bonnie-$b" $(tls "bonnie-bonnie-$b") --no-self-metrics \
    2> "$data/bonnie-$b.log" &
  pids+=($!)
done
printf '%s\n' "${bonnies[@]}" > "$data/bonnies"
$(as clyde-clyde-1) "$build/proxy/monitor-proxy" --role clyde --name clyde-1 --listen "127.0.0.1:$(free_port)" --dc remote \
  --registry "$registry" --data-dir "$data/clyde-1" --bonnies-file "$data/bonnies" $(tls clyde-clyde-1) \
  --no-self-metrics 2> "$data/clyde-1.log" &
pids+=($!)
# Conditions for await: evaluated afresh on every try.
judgers_live() { test "$(ctl judger list --output json | grep -o '"state":"live"' | wc -l)" = "$1"; }
parts_live() { test "$(ctl status --output json | grep -o '"state":"live"' | wc -l)" = "$1"; }
await 20 judgers_live 2 || fail "the judgers did not register"

echo "== Shop.Api registered (monitorctl places it on the least-loaded judger)"
ctl service add Shop.Api
ctl attr add Shop.Api Orders.Placed Request.LatencyUs
ctl service add Host.System --auto-attrs 2000 > /dev/null  # the agents' host metrics
owner=$(ctl service show Shop.Api --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["judger"])')
owner_query=$(ctl judger list --output json |
  python3 -c "import json,sys; print([j['query'] for j in json.load(sys.stdin) if j['judger'] == '$owner'][0])")
echo "   owned by $owner (queries on $owner_query)"

echo "== an agent per data centre"
for dc in central remote; do
  ring="/monitor-multihost-$dc-$$"
  rings+=("$ring")
  $(as "agent-agent-$dc") "$build/agent/monitor-agent" --ring "$ring" --socket "" --output none --registry "$registry" --dc "$dc" \
    --spool-dir "$data/agent-$dc" --journal none $(tls "agent-agent-$dc") --no-self-metrics 2> "$data/agent-$dc.log" &
  pids+=($!)
done
await 20 parts_live 7 || fail "not every part is live: $(ctl status)"
ctl status

# GET https://<owner's query API>$1 with the CA checked and $2 as the token: the status and body.
query_api() {
  python3 - "$owner_query" "$1" "${2:-}" <<'PY'
import json, os, ssl, sys, urllib.error, urllib.request as u
address, target, token = sys.argv[1:4]
context = ssl.create_default_context(cafile=os.environ["MONITOR_QUERY_CA"])
request = u.Request(f"https://{address}{target}", headers={"Authorization": "Bearer " + token} if token else {})
try:
    with u.urlopen(request, timeout=2, context=context) as reply:
        print(reply.status, reply.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, "")
PY
}
# Reports the owner stored so far, from its query API's health (what monitorctl query reads from).
stored() { query_api /api/health "$MONITOR_TOKEN" | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])'; }
echo "== the demo app through each agent (3 s each); the owner's stored reports grow each time"
for dc in central remote; do
  before=$(stored)
  MONITOR_RING="/monitor-multihost-$dc-$$" "$build/examples/monitor-demo" 3 > "$data/demo-$dc.out"
  grew() { test "$(stored)" -gt "$before"; }
  await 20 grew || fail "reports sent through the $dc agent did not reach $owner"
  echo "   through the $dc agent: $owner has stored $(stored) reports"
done
ctl judger list

echo "== what etcd refuses: a daemon's user and a console role's user change only what they own, and read no user's hashes"
refused() {  # refused USER PASSWORD MONITORCTL-ARGS...: monitorctl exits 4, "refused by etcd"
  local user=$1 password=$2; shift 2
  local out rc=0
  out=$(MONITOR_REGISTRY_USER=$user MONITOR_REGISTRY_PASSWORD=$password ctl "$@" 2>&1) || rc=$?
  [ "$rc" = 4 ] || fail "monitorctl $* as $user: exit $rc, not 4 (refused): $out"
  echo "   $user: monitorctl $*: refused"
}
refused monitor-agent "agent-$$" service add Evil.Api
refused monitor-agent "agent-$$" user list
refused monitor-proxy "proxy-$$" service add Evil.Api
refused monitor-dashboard "dashboard-$$" service add Evil.Api
refused monitor-judger "judger-$$" service add Evil.Api
ctl role add shop 'Shop.*' > /dev/null
ctl user add alice --new-password "alice-$$" --role shop > /dev/null
MONITOR_REGISTRY_USER=alice MONITOR_REGISTRY_PASSWORD="alice-$$" ctl service list > /dev/null ||
  fail "alice (role shop) cannot list the services"
refused alice "alice-$$" user list
refused alice "alice-$$" service add Payroll.Api
anonymous=$(query_api /api/health | cut -d' ' -f1)
[ "$anonymous" = 401 ] || fail "$owner's query API answered $anonymous to a request without a token, not 401"
echo "   a query over HTTPS without a token: 401"
ctl query --service Shop.Api --attr Orders.Placed --query-address "$owner_query" > /dev/null ||
  fail "monitorctl query over HTTPS with carol's token failed"
if MONITOR_QUERY_CA= ctl query --service Shop.Api --attr Orders.Placed --query-address "$owner_query" > /dev/null 2>&1; then
  fail "monitorctl query over plain HTTP was answered"
fi
echo "   monitorctl query: answered over HTTPS, not over plain HTTP"
# The plain-HTTP query above is the one handshake a judger may have refused.
grep -vE "query: TLS handshake with 127.0.0.1 failed: http request" "$data"/*.log |
  grep -qE "refused: |TLS handshake|refused 127" && fail "a part refused a peer's certificate"
echo "== the multi-host layout works: every part live on etcd, reports routed from both data centres, every link and etcd over TLS, each daemon its own etcd user, queries over HTTPS with a token"
