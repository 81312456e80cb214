#!/usr/bin/env bash
# Stops the sandbox: the operator and the emulator by their recorded pids, then
# the control plane (tests/cluster/down.sh).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sandbox=$root/.sandbox
for name in operator emulator; do
  f=$sandbox/$name.pid
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
done
rm -f "$sandbox"/operator.* "$sandbox"/emulator.*
CLUSTER=sandbox "$root/tests/cluster/down.sh"
