#!/usr/bin/env bash
# The Debian packages some tests and benchmarks need: chromium (tests/web/test_browser.py, headless)
# and wrk (bench/web/run.py, HTTP load). Installs the missing ones when it can (root and apt-get),
# else prints one line saying what is missing; never fails the caller: the tests that need a
# missing program skip and say why. Fast when everything is there (two `command -v`).
#
# Usage: bash tests/support/os_packages.sh            (make test and make bench-web run it first)
#        OS_PACKAGES_NO_INSTALL=1 bash ...            (only report)
set -u

declare -A PKG_OF=([chromium]=chromium [wrk]=wrk)   # command -> Debian package
missing=()
for cmd in chromium wrk; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG_OF[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
effect="without chromium the browser test skips, without wrk make bench-web cannot run"

if [ -n "${OS_PACKAGES_NO_INSTALL:-}" ] || [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    why="not root"; [ "$EUID" -eq 0 ] && why="no apt-get"; [ -n "${OS_PACKAGES_NO_INSTALL:-}" ] && why="OS_PACKAGES_NO_INSTALL set"
    echo "os_packages: missing ${missing[*]} ($why; as root: apt-get install -y --no-install-recommends ${missing[*]}); $effect"
    exit 0
fi

install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/os_packages.$$.log 2>&1
}
echo "os_packages: installing ${missing[*]} (apt-get, Debian packages)"
# a fresh machine has no package lists yet: update once when the first try cannot find the packages
if ! install && ! { apt-get update -qq >>/tmp/os_packages.$$.log 2>&1 && install; }; then
    echo "os_packages: could not install ${missing[*]} (apt-get failed: $(tail -n 1 /tmp/os_packages.$$.log)); $effect"
fi
rm -f /tmp/os_packages.$$.log
exit 0
