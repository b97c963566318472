#!/usr/bin/env bash
# Idempotent: creates bench/.venv-crossbar (a separate venv, never a dependency
# of wampfabric) and installs Crossbar.io from PyPI into it.
#
# Usage: bash bench/setup_crossbar.sh
#   CROSSBAR_VERSION=26.10.1 bash bench/setup_crossbar.sh   # pin a version
#   CROSSBAR_PYTHON=python3.12 bash bench/setup_crossbar.sh # force interpreter
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-crossbar"
SPEC="crossbar${CROSSBAR_VERSION:+==$CROSSBAR_VERSION}"

if [ -x "$VENV/bin/crossbar" ] && "$VENV/bin/crossbar" version >/dev/null 2>&1; then
    echo "crossbar already installed in $VENV"
    "$VENV/bin/crossbar" version 2>&1 | grep -iE 'crossbar|python|twisted|autobahn' | head -n 8 || true
    exit 0
fi

if [ -n "${CROSSBAR_PYTHON:-}" ]; then
    candidates=("$CROSSBAR_PYTHON")
else
    candidates=(python3.11 python3.12 python3.13)
fi

# Resolve an interpreter name to something runnable: pyenv shims refuse to run
# a version that is not globally selected, so fall back to pyenv's own dirs.
resolve_python() {
    local name="$1" cand
    if command -v "$name" >/dev/null 2>&1 && "$name" -c 'import sys' >/dev/null 2>&1; then
        command -v "$name"; return 0
    fi
    for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/"$name" "/usr/bin/$name" "/usr/local/bin/$name"; do
        if [ -x "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then
            echo "$cand"; return 0
        fi
    done
    return 1
}

for name in "${candidates[@]}"; do
    if ! py="$(resolve_python "$name")"; then
        echo "skip $name: not available"
        continue
    fi
    echo "=== trying $py ($("$py" --version 2>&1))"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip wheel setuptools || true
    if "$VENV/bin/python" -m pip install "$SPEC" \
        && "$VENV/bin/crossbar" version >/dev/null 2>&1; then
        echo "crossbar installed with $py in $VENV"
        "$VENV/bin/crossbar" version 2>&1 | grep -iE 'crossbar|python|twisted|autobahn' | head -n 8 || true
        exit 0
    fi
    echo "!!! crossbar install/version check failed with $py"
done

echo "ERROR: could not install a working crossbar with any of: ${candidates[*]}" >&2
rm -rf "$VENV"
exit 1
