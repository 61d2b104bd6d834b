#!/usr/bin/env bash
# End-to-end checks on a live stack (kind): what the stack promises, proven with real traffic.
#
#   scripts/e2e.sh [STACK]        # default: lab; needs kubectl, curl, pulumi and the stack's cluster
#
# Every check prints PASS or FAIL and has its own timeout; the script exits 1 if any failed.
# Every kubectl call goes to the stack's own cluster (its kubeconfig output), never to whatever
# context is current. The isolation checks remove the demo namespace's NetworkPolicies for a moment
# (to show that the mesh alone still refuses) and always put them back, even when interrupted; if
# that fails, the backup's path is printed and the file kept.
# Runs on bash 3.2 and without coreutils' `timeout` (stock macOS).
set -euo pipefail

STACK="${1:-lab}"
NS="${E2E_NAMESPACE:-demo}"
TIMEOUT="${E2E_TIMEOUT:-5}"
# The curl image of mesh_platform/versions.py (CURL_IMAGE), by digest; tests/test_e2e_script.py keeps them equal.
CURL_IMAGE="docker.io/curlimages/curl:8.22.0@sha256:58adaa4e8dca9c988bae2aba4ab3434a0bb2da16bbe3f92dec39ec7785166777"
INTRUDER_NS="e2e-intruder"
PLAIN_NS="e2e-plaintext"
failures=0

for tool in kubectl curl pulumi; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed (README.md, \"Prerequisites\")" >&2; exit 2; }
done

pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }

# output NAME [--show-secrets]: a stack output; stops the script, saying why, when it cannot be read.
output() {
  local out
  if ! out="$(pulumi stack output --stack "$STACK" "$@" 2>&1)"; then
    echo "e2e: cannot read output '$1' of stack $STACK: ${out:-no message}" >&2
    echo "e2e: the stack must be up, and PULUMI_CONFIG_PASSPHRASE(_FILE) the one it was created with (make e2e sets it)" >&2
    exit 2
  fi
  printf '%s\n' "$out"
}

# with_timeout SECONDS COMMAND...: the command, killed after SECONDS (coreutils' `timeout` is not
# on every machine). The watchdog's output goes nowhere, so $(...) never waits for it.
with_timeout() {
  local secs="$1" pid watchdog rc=0
  shift
  "$@" &
  pid=$!
  (sleep "$secs" && kill "$pid") >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid" || rc=$?
  kill "$watchdog" >/dev/null 2>&1 || true
  return "$rc"
}

# check NAME EXPECTED COMMAND...: PASS when the command's output contains EXPECTED.
check() {
  local name="$1" expected="$2" got
  shift 2
  got="$(with_timeout "$((TIMEOUT * 3))" "$@" 2>&1 || true)"
  if [[ "$got" == *"$expected"* ]]; then pass "$name"; else fail "$name (wanted '$expected', got '${got:0:200}')"; fi
}

# http_code POD NS URL: the HTTP status a pod gets, 000 when the connection itself fails.
http_code() {
  kc exec -n "$2" "$1" -c probe -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$3" 2>/dev/null || true
}

kubeconfig="$(mktemp)"
backup="$(mktemp)"
chmod 600 "$kubeconfig"
# Every kubectl call of this script: the stack's cluster, nothing else.
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

probe_pod() {
  local ns="$1" inject="$2"
  kc create namespace "$ns" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc label namespace "$ns" --overwrite istio-injection="$inject" pod-security.kubernetes.io/enforce=privileged >/dev/null
  kc run probe -n "$ns" --image="$CURL_IMAGE" --restart=Never --command -- sleep 3600 >/dev/null 2>&1 || true
  kc wait -n "$ns" --for=condition=Ready pod/probe --timeout=180s >/dev/null
}

# restore_policies: 0 when nothing is left to restore; the backup is emptied only once applied.
restore_policies() {
  [[ -s "$backup" ]] || return 0
  if kc apply -f "$backup" >/dev/null; then : >"$backup"; return 0; fi
  return 1
}

# Every step runs whatever the one before did; the backup is kept (and named) if it was not applied.
cleanup() {
  local rc=$?
  set +e
  if ! restore_policies; then
    echo "e2e: the NetworkPolicies of $NS could NOT be restored; they are in $backup:" >&2
    echo "e2e:   kubectl --kubeconfig <the stack's kubeconfig> apply -f $backup" >&2
    rc=1
  else
    rm -f "$backup"
  fi
  [[ -s "$kubeconfig" ]] && kc delete namespace "$INTRUDER_NS" "$PLAIN_NS" --ignore-not-found --wait=false >/dev/null 2>&1
  rm -f "$kubeconfig"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

output kubeconfig --show-secrets >"$kubeconfig"
[[ -s "$kubeconfig" ]] || { echo "e2e: stack $STACK has an empty kubeconfig output" >&2; exit 2; }

base="$(output gatewayUrl)"
# httpsUrl exists only with the stack's own CA on the gateway.
https="$(pulumi stack output --stack "$STACK" httpsUrl 2>/dev/null || true)"
svc="http://my-service.${NS}.svc.cluster.local:5000"
frontend="http://frontend.${NS}.svc.cluster.local:8080"
client="$(kc get pod -n "$NS" -l app=client -o jsonpath='{.items[0].metadata.name}')"

echo "== routing through the ingress gateway"
check "GET $base/v1 answers from v1" "my-service v1" curl -s --max-time "$TIMEOUT" "$base/v1"
check "GET $base/ answers from v2" "my-service v2" curl -s --max-time "$TIMEOUT" "$base/"
if [[ -n "$https" ]]; then
  ca="$(mktemp)"
  kc -n cert-manager get secret mesh-platform-ca -o jsonpath='{.data.ca\.crt}' | base64 -d >"$ca"
  check "GET $https/v1 over TLS with the stack's CA" "my-service v1" curl -s --max-time "$TIMEOUT" --cacert "$ca" "$https/v1"
  rm -f "$ca"
fi

echo "== declared calls work"
check "client → my-service" "my-service v2" kc exec -n "$NS" "$client" -c client -- curl -s --max-time "$TIMEOUT" "$svc/"

echo "== undeclared calls are refused, by each layer alone"
probe_pod "$INTRUDER_NS" enabled
probe_pod "$PLAIN_NS" disabled
code="$(http_code probe "$INTRUDER_NS" "$svc/")"
if [[ "$code" == "000" ]]; then pass "intruder → my-service dropped by NetworkPolicy"; else fail "intruder → my-service: HTTP $code, expected no connection"; fi
code="$(kc exec -n "$NS" "$client" -c client -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$frontend/" 2>/dev/null || true)"
if [[ "$code" == "000" ]]; then pass "client → frontend (role: frontend) dropped by NetworkPolicy"; else fail "client → frontend: HTTP $code, expected no connection"; fi

echo "   (NetworkPolicies of $NS backed up to $backup while they are removed)"
kc get networkpolicy -n "$NS" -o yaml \
  | sed -e '/^    resourceVersion:/d' -e '/^    uid:/d' -e '/^    creationTimestamp:/d' -e '/^    generation:/d' >"$backup"
kc delete networkpolicy -n "$NS" --all --wait=true >/dev/null
code="$(http_code probe "$INTRUDER_NS" "$svc/")"
if [[ "$code" == "403" ]]; then pass "intruder → my-service denied by AuthorizationPolicy alone (403)"; else fail "intruder → my-service without NetworkPolicies: HTTP $code, expected 403"; fi
code="$(http_code probe "$PLAIN_NS" "$svc/")"
if [[ "$code" == "000" ]]; then pass "plaintext from outside the mesh refused under STRICT mTLS"; else fail "plaintext → my-service: HTTP $code, expected the connection refused"; fi
code="$(kc exec -n "$NS" "$client" -c client -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$frontend/" 2>/dev/null || true)"
if [[ "$code" == "403" ]]; then pass "client → frontend denied by AuthorizationPolicy alone (403)"; else fail "client → frontend without NetworkPolicies: HTTP $code, expected 403"; fi
if restore_policies; then pass "NetworkPolicies of $NS restored"; else fail "NetworkPolicies of $NS not restored (backup: $backup)"; fi
check "NetworkPolicies restored" "default-deny" kc get networkpolicy -n "$NS" -o name

echo
if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
