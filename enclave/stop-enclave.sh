#!/usr/bin/env bash
# Stops what enclave/run-enclave.sh started: the parent program (SIGTERM), the enclave
# (nitro-cli terminate-enclave; its memory, with the shares, is gone with it) and vsock-proxy.
# Key share files already stored in S3 stay; the next run-enclave.sh boots with the newest.
set -uo pipefail
state=/run/wallet-mpc-enclave
stop_pid() {
  [ -s "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null && for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}
stop_pid "$state/parent.pid"
if [ -s "$state/enclave-id" ]; then
  nitro-cli terminate-enclave --enclave-id "$(cat "$state/enclave-id")" || true
  rm -f "$state/enclave-id" "$state/run-enclave.json"
fi
stop_pid "$state/vsock-proxy.pid"
echo "stop-enclave: stopped"
