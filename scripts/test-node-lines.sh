#!/usr/bin/env bash
# Runs the test suite (already compiled by `npm test`) on every pinned Node.js line of scripts/node-lines.sh,
# after the run on the machine's own Node. Arguments are passed to tap (e.g. a test file).
# Fails if any line fails or a line's binary cannot be fetched.
set -uo pipefail
cd "$(dirname "$0")/.."
TAP=node_modules/tap/dist/esm/run.mjs
fail=0
for v in $(bash scripts/node-lines.sh versions); do
  if ! node=$(bash scripts/node-lines.sh path "$v"); then
    echo "test-node-lines: could not get Node $v" >&2; fail=1; continue
  fi
  echo "# test-node-lines: the suite on Node $("$node" --version)"
  start=$(date +%s)
  if ! "$node" "$TAP" "$@"; then
    echo "test-node-lines: FAILED on Node $v" >&2; fail=1
  fi
  echo "# test-node-lines: Node $v took $(( $(date +%s) - start )) s"
done
exit $fail
