#!/usr/bin/env bash
# Runs the test suite (already compiled by `npm test`) on every pinned Node.js line of scripts/node-lines.sh,
# after the run on the machine's own Node: the whole suite, then the proxy tests on the portable engine.
# Arguments are passed to tap instead (e.g. one test file; the portable pass is then skipped).
# Fails if any line fails or a line's binary cannot be fetched: a missing Node line is an error, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
TAP=node_modules/tap/dist/esm/run.mjs
fail=0
summary=()
for v in $(bash scripts/node-lines.sh versions); do
  if ! node=$(bash scripts/node-lines.sh path "$v"); then
    echo "test-node-lines: could not get Node $v (see above); the suite must run on every pinned line" >&2
    summary+=("Node $v: NOT RUN (binary unavailable)"); fail=1; continue
  fi
  # Tests start child processes with process.execPath; `node` on PATH (npm, scripts) is this line too.
  line_path="$(dirname "$node"):$PATH"
  echo "# test-node-lines: the suite on Node $("$node" --version)"
  start=$(date +%s)
  ok=1
  if ! PATH="$line_path" "$node" "$TAP" "$@"; then ok=0; fi
  if [ $# -eq 0 ]; then
    echo "# test-node-lines: the proxy tests on the portable engine, Node $v"
    if ! PATH="$line_path" MESHMEDIC_HTTP1_ENGINE=portable "$node" "$TAP" test/proxy/*.test.ts; then ok=0; fi
  fi
  took=$(( $(date +%s) - start ))
  if [ $ok -eq 1 ]; then summary+=("Node $v: passed in ${took} s"); else summary+=("Node $v: FAILED after ${took} s"); fail=1; fi
  echo "# test-node-lines: Node $v took ${took} s"
done
for line in "${summary[@]}"; do echo "# test-node-lines: $line"; done
[ $fail -eq 0 ] || echo "test-node-lines: FAILED" >&2
exit $fail
