#!/usr/bin/env bash
# End-to-end checks on a live stack (kind): what the stack promises, proven with real traffic.
#
#   scripts/e2e.sh [STACK]        # default: lab; needs kubectl, curl, pulumi and the stack's cluster
#
# Every check prints PASS or FAIL and has its own timeout; the script exits 1 if any failed.
# The isolation checks remove the demo namespace's NetworkPolicies for a moment (to show that the
# mesh alone still refuses) and always put them back, even when interrupted.
set -euo pipefail

STACK="${1:-lab}"
NS="${E2E_NAMESPACE:-demo}"
TIMEOUT="${E2E_TIMEOUT:-5}"
CURL_IMAGE="docker.io/curlimages/curl:8.11.1"
INTRUDER_NS="e2e-intruder"
PLAIN_NS="e2e-plaintext"
failures=0
backup="$(mktemp)"

pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }

output() { pulumi stack output --stack "$STACK" "$1" 2>/dev/null; }

# check NAME EXPECTED COMMAND...: PASS when the command's output contains EXPECTED.
check() {
  local name="$1" expected="$2" got
  shift 2
  got="$(timeout "$((TIMEOUT * 3))" "$@" 2>&1 || true)"
  if [[ "$got" == *"$expected"* ]]; then pass "$name"; else fail "$name (wanted '$expected', got '${got:0:200}')"; fi
}

# http_code POD NS URL: the HTTP status a pod gets, 000 when the connection itself fails.
http_code() {
  kubectl exec -n "$2" "$1" -c probe -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$3" 2>/dev/null || true
}

probe_pod() {
  local ns="$1" inject="$2"
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$ns" --overwrite istio-injection="$inject" pod-security.kubernetes.io/enforce=privileged >/dev/null
  kubectl run probe -n "$ns" --image="$CURL_IMAGE" --restart=Never --command -- sleep 3600 >/dev/null 2>&1 || true
  kubectl wait -n "$ns" --for=condition=Ready pod/probe --timeout=180s >/dev/null
}

restore_policies() {
  if [[ -s "$backup" ]]; then kubectl apply -f "$backup" >/dev/null && : >"$backup"; fi
}

cleanup() {
  restore_policies
  kubectl delete namespace "$INTRUDER_NS" "$PLAIN_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -f "$backup"
}
trap cleanup EXIT

base="$(output gatewayUrl)"
https="$(output httpsUrl || true)"
svc="http://my-service.${NS}.svc.cluster.local:5000"
frontend="http://frontend.${NS}.svc.cluster.local:8080"
client="$(kubectl get pod -n "$NS" -l app=client -o jsonpath='{.items[0].metadata.name}')"

echo "== routing through the ingress gateway"
check "GET $base/v1 answers from v1" "my-service v1" curl -s --max-time "$TIMEOUT" "$base/v1"
check "GET $base/ answers from v2" "my-service v2" curl -s --max-time "$TIMEOUT" "$base/"
if [[ -n "$https" ]]; then
  ca="$(mktemp)"
  kubectl -n cert-manager get secret mesh-platform-ca -o jsonpath='{.data.ca\.crt}' | base64 -d >"$ca"
  check "GET $https/v1 over TLS with the stack's CA" "my-service v1" curl -s --max-time "$TIMEOUT" --cacert "$ca" "$https/v1"
  rm -f "$ca"
fi

echo "== declared calls work"
check "client → my-service" "my-service v2" kubectl exec -n "$NS" "$client" -c client -- curl -s --max-time "$TIMEOUT" "$svc/"

echo "== undeclared calls are refused, by each layer alone"
probe_pod "$INTRUDER_NS" enabled
probe_pod "$PLAIN_NS" disabled
code="$(http_code probe "$INTRUDER_NS" "$svc/")"
if [[ "$code" == "000" ]]; then pass "intruder → my-service dropped by NetworkPolicy"; else fail "intruder → my-service: HTTP $code, expected no connection"; fi
code="$(kubectl exec -n "$NS" "$client" -c client -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$frontend/" 2>/dev/null || true)"
if [[ "$code" == "000" ]]; then pass "client → frontend (role: frontend) dropped by NetworkPolicy"; else fail "client → frontend: HTTP $code, expected no connection"; fi

kubectl get networkpolicy -n "$NS" -o yaml \
  | sed -e '/^    resourceVersion:/d' -e '/^    uid:/d' -e '/^    creationTimestamp:/d' -e '/^    generation:/d' >"$backup"
kubectl delete networkpolicy -n "$NS" --all --wait=true >/dev/null
code="$(http_code probe "$INTRUDER_NS" "$svc/")"
if [[ "$code" == "403" ]]; then pass "intruder → my-service denied by AuthorizationPolicy alone (403)"; else fail "intruder → my-service without NetworkPolicies: HTTP $code, expected 403"; fi
code="$(http_code probe "$PLAIN_NS" "$svc/")"
if [[ "$code" == "000" ]]; then pass "plaintext from outside the mesh refused under STRICT mTLS"; else fail "plaintext → my-service: HTTP $code, expected the connection refused"; fi
code="$(kubectl exec -n "$NS" "$client" -c client -- curl -s -o /dev/null -w '%{http_code}' --max-time "$TIMEOUT" "$frontend/" 2>/dev/null || true)"
if [[ "$code" == "403" ]]; then pass "client → frontend denied by AuthorizationPolicy alone (403)"; else fail "client → frontend without NetworkPolicies: HTTP $code, expected 403"; fi
restore_policies
check "NetworkPolicies restored" "default-deny" kubectl get networkpolicy -n "$NS" -o name

echo
if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
