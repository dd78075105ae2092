#!/usr/bin/env bash
# Starts the wallet-mpc enclave on a Nitro-enabled EC2 host (docs/enclave.md, "Deploy"):
#   1. AWS's vsock-proxy: the enclave's KMS traffic (vsock 5000) to kms.<region>.amazonaws.com:443
#      (TLS end to end: the host relays ciphertext; the host must allow-list that address in
#      /etc/nitro_enclaves/vsock-proxy.yaml);
#   2. the enclave from its EIF (nitro-cli run-enclave), CID $WALLET_MPC_ENCLAVE_CID;
#   3. the parent program (enclave/parent.ts run): IMDSv2 credentials, S3, provisioning, the
#      ingress / egress bridges and the upload of new key share files. It runs in the foreground
#      (run this script under systemd); its exit stops the other two.
# Settings (environment): WALLET_MPC_REGION, WALLET_MPC_BUCKET (required), WALLET_MPC_PREFIX,
# WALLET_MPC_EIF (default dist/enclave/wallet-mpc.eif), WALLET_MPC_ENCLAVE_CID (16),
# WALLET_MPC_ENCLAVE_CPUS (2), WALLET_MPC_ENCLAVE_MEMORY_MIB (4096), WALLET_MPC_GATEWAY
# (host:port of the sign-gateway, default 127.0.0.1:8080; its TLS port when the image's
# gateway.url is https), WALLET_MPC_PARENT_ISSUER_SECRET_FILE (the KMS ciphertext of the
# gateway's issuer secret, read by the parent itself; docs/enclave.md "Room tokens in the
# enclave"), WALLET_MPC_DEBUG=1 (debug mode:
# console readable, PCRs all zero, so KMS refuses it under the PCR0 policy), DENO (the deno
# binary, default node_modules/.bin/deno). State (pids, enclave id) in /run/wallet-mpc-enclave.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${WALLET_MPC_REGION:?set WALLET_MPC_REGION}"
: "${WALLET_MPC_BUCKET:?set WALLET_MPC_BUCKET}"
prefix="${WALLET_MPC_PREFIX:-}"
eif="${WALLET_MPC_EIF:-dist/enclave/wallet-mpc.eif}"
cid="${WALLET_MPC_ENCLAVE_CID:-16}"
cpus="${WALLET_MPC_ENCLAVE_CPUS:-2}"
memory="${WALLET_MPC_ENCLAVE_MEMORY_MIB:-4096}"
gateway="${WALLET_MPC_GATEWAY:-127.0.0.1:8080}"
deno="${DENO:-node_modules/.bin/deno}"
state=/run/wallet-mpc-enclave

for bin in nitro-cli vsock-proxy "$deno"; do
  command -v "$bin" >/dev/null 2>&1 || { echo "run-enclave: $bin not found" >&2; exit 1; }
done
[ -f "$eif" ] || { echo "run-enclave: no EIF at $eif (deno task enclave:build)" >&2; exit 1; }
mkdir -p "$state"
if [ -s "$state/enclave-id" ]; then
  echo "run-enclave: an enclave is recorded in $state (run enclave/stop-enclave.sh first)" >&2
  exit 1
fi

vsock-proxy 5000 "kms.${WALLET_MPC_REGION}.amazonaws.com" 443 &
echo $! > "$state/vsock-proxy.pid"

debug=()
[ "${WALLET_MPC_DEBUG:-0}" = 1 ] && debug=(--debug-mode)
nitro-cli run-enclave --eif-path "$eif" --cpu-count "$cpus" --memory "$memory" \
  --enclave-cid "$cid" "${debug[@]}" > "$state/run-enclave.json"
sed -n 's/.*"EnclaveID": *"\([^"]*\)".*/\1/p' "$state/run-enclave.json" > "$state/enclave-id"
echo "run-enclave: enclave $(cat "$state/enclave-id") started (CID $cid)"

cleanup() { enclave/stop-enclave.sh || true; }
trap cleanup EXIT
"$deno" run -A --unstable-vsock enclave/parent.ts run \
  --enclave-cid "$cid" --region "$WALLET_MPC_REGION" --bucket "$WALLET_MPC_BUCKET" \
  --prefix "$prefix" --egress "8080=${gateway}" &
echo $! > "$state/parent.pid"
wait "$(cat "$state/parent.pid")"
