#!/usr/bin/env bash
# Installs the programs the tests and benchmarks drive: HAProxy, nginx and wrk (peers), ip and nft (the
# chaos lab's network namespaces and faults), openssl (certificates
# for the HTTPS tests), kubectl (renders the kustomize install),
# promtool (checks /metrics) and chromium (drives the admin dashboard's browser test). Idempotent and quiet: does nothing when they
# are present; otherwise one `apt-get update`, then `apt-get install -y` of what is missing. Exits 1 with a
# clear message when it cannot install: `npm test` stops there rather than skipping the tests that need them.
set -u

# binary -> Debian package that provides it (nginx-light is the small build; any nginx works). Add a row
# here for every program a test needs.
declare -A PKG=( [ip]=iproute2 [nft]=nftables [haproxy]=haproxy [nginx]=nginx-light [wrk]=wrk [openssl]=openssl [kubectl]=kubernetes-client [promtool]=prometheus [chromium]=chromium [curl]=curl )
BINS=(ip nft haproxy nginx wrk openssl kubectl promtool chromium curl)
want=()
for bin in "${BINS[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    want+=("${PKG[$bin]}")
  fi
done

if [ "${#want[@]}" -eq 0 ]; then
  exit 0
fi

say() { printf 'ensure-peers: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    say "missing: ${want[*]}. Install them as root: apt-get update && apt-get install -y ${want[*]}"
    exit 1
  fi
else
  SUDO=()
fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "missing: ${want[*]}, and this system has no apt-get: install them with its package manager"
  exit 1
fi

say "installing ${want[*]} from the distribution's packages"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1; then
  say "apt-get update failed:"; tail -n 5 "$log" >&2; rm -f "$log"; exit 1
fi
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}" >"$log" 2>&1; then
  say "apt-get install ${want[*]} failed:"; tail -n 5 "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"

for bin in "${BINS[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    say "$bin is still missing after the install"; exit 1
  fi
done
say "installed ${want[*]}"
exit 0
