# The fixed body of node.sh; tarsus.install.wheelhouse.node_script puts the settings above it.
# Knobs (environment): TARSUS_PREFIX (install under it, e.g. for several nodes on one machine),
# TARSUS_PYTHON (default python3), TARSUS_NODE_NAME, TARSUS_HOST (default: the address the
# registry sees), TARSUS_FOREGROUND=1 (run the node in this shell instead of as a service),
# TARSUS_JOIN_TOKEN (a secured framework's join token: the node's keys are fetched with it).
set -eu
PREFIX="${TARSUS_PREFIX:-}"
PYTHON="${TARSUS_PYTHON:-python3}"
VENV="$PREFIX/opt/tarsus"

say() { printf 'tarsus node.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 \
    || die "$PYTHON not found: install Python 3.11 or newer (apt-get install python3 python3-venv)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "neither curl nor wget is installed"
    fi
}

say "downloading Tarsus's wheels from $TARSUS_BASE"
fetch "$TARSUS_BASE/install/wheelhouse.tar" "$work/wheelhouse.tar" \
    || die "cannot download $TARSUS_BASE/install/wheelhouse.tar"
got=$(sha256sum "$work/wheelhouse.tar" | cut -d' ' -f1)
[ "$got" = "$TARSUS_WHEELS_SHA256" ] \
    || die "wheelhouse.tar is not what the framework announced (sha256 $got, expected $TARSUS_WHEELS_SHA256)"
mkdir "$work/wheels"
tar -xf "$work/wheelhouse.tar" -C "$work/wheels"

# pip's own wheel, when the framework packed one, runs straight from the wheel: the venv is
# made without ensurepip (seconds saved, and no python3-venv package needed).
pip_wheel=$(ls "$work"/wheels/pip-*.whl 2>/dev/null | head -n 1)
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    if [ -n "$pip_wheel" ]; then
        "$PYTHON" -m venv --without-pip "$VENV" || die "'$PYTHON -m venv --without-pip' failed"
    else
        "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed: install python3-venv"
    fi
fi
say "installing Tarsus into $VENV (from the framework's wheels only)"
if [ -n "$pip_wheel" ]; then
    set -- "$VENV/bin/python" "$pip_wheel/pip"
else
    set -- "$VENV/bin/python" -m pip
fi
# The wheelhouse is one consistent set: installed as it is (--no-deps: no resolving), not
# byte-compiled now (Python does it on first import).
"$@" install -q --disable-pip-version-check --no-index --no-deps \
    --no-compile "$work"/wheels/*.whl \
    || die "pip could not install the wheels (this host's Python must match the framework host's: $("$PYTHON" --version 2>&1))"

# TARSUS_JOIN_TOKEN (a secured framework's) stays in the environment, off the command line:
# `tarsus install node` fetches the node's keys with it from $TARSUS_BASE.
set -- --locator "$TARSUS_LOCATOR" --web "$TARSUS_BASE"
if [ -n "$PREFIX" ]; then set -- "$@" --prefix "$PREFIX"; fi
if [ -n "${TARSUS_NODE_NAME:-}" ]; then set -- "$@" --node-name "$TARSUS_NODE_NAME"; fi
if [ -n "${TARSUS_HOST:-}" ]; then set -- "$@" --host "$TARSUS_HOST"; fi
if [ -n "${TARSUS_FOREGROUND:-}" ]; then set -- "$@" --foreground; fi
"$VENV/bin/python" -m tarsus install node "$@"
