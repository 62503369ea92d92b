#!/usr/bin/env bash
# Installs what the test suite needs beyond `npm ci`, on Debian 12; `npm test` runs it first, so a
# newcomer's `npm ci && npm test` needs nothing installed by hand. Idempotent and quiet when all is
# there (a few dpkg look-ups), so it costs nothing on the second run.
#
# - Debian packages: Xen's clients (xenstore-utils, and libxenmisc4.17 for xenstore-control's
#   libraries) for test/compat; chromium for test/browser (playwright-core drives /usr/bin/chromium:
#   no browser download); systemd for systemd-socket-activate (test/lifecycle); python3 for refd's
#   wire probe; g++ and make for the native addon unix-dgram that `npm ci` builds.
# - Inside the checkout, never in shared /tmp paths (test/helpers/xen-tools.ts looks only here):
#   .xen-tools/root: xen-utils-4.17 unpacked, not installed (its /usr/bin entries are wrappers that
#     refuse to run without a hypervisor; xenstore-control and test-xenstore run from usr/lib).
#   .xen-tools/refd: Xen's own daemons for test/compat/peers.test.ts, by ../shared/refd/setup.sh
#     with XEN_DIR pointing here.
#
# Not root and something missing: says what to run and carries on, so that the tests that need it
# fail with their own message (never a skip) and the rest still run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(xenstore-utils libxenmisc4.17 chromium systemd python3 g++ make)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

root=0
[[ $(id -u) == 0 ]] && root=1

if ((${#missing[@]})); then
  if ((root)); then
    echo "test tools: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test tools: missing Debian packages ${missing[*]}; as root: apt-get install -y ${missing[*]}" >&2
  fi
fi

if [[ ! -x .xen-tools/root/usr/lib/xen-4.17/bin/xenstore-control ]]; then
  if ((root)) || command -v apt-get >/dev/null; then
    echo "test tools: unpacking xen-utils-4.17 into .xen-tools/root"
    rm -rf .xen-tools/root .xen-tools/deb && mkdir -p .xen-tools/deb
    # apt-get download runs as _apt unless told otherwise, which cannot write into a root-owned tree.
    (cd .xen-tools/deb && { apt-get -qq -o APT::Sandbox::User=root download xen-utils-4.17 ||
      { ((root)) && apt-get update -qq && apt-get -qq -o APT::Sandbox::User=root download xen-utils-4.17; }; } &&
      dpkg-deb -x xen-utils-4.17_*.deb ../root) ||
      echo "test tools: could not unpack xen-utils-4.17 (xenstore-control, test-xenstore)" >&2
  fi
fi

REFD=../shared/refd
if [[ -f $REFD/setup.sh ]]; then
  XEN_DIR="$PWD/.xen-tools/refd" bash "$REFD/setup.sh" >/dev/null ||
    echo "test tools: $REFD/setup.sh failed (test/compat/peers.test.ts needs it)" >&2
else
  echo "test tools: no $REFD beside the checkout (test/compat/peers.test.ts needs Xen's daemons from it)" >&2
fi
