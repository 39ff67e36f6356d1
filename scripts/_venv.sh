# Sourced by scripts/demo, scripts/test and .ci/run: make sure the project venv exists and holds an
# editable install of the current pyproject.toml with the dev extras, then put it first on PATH.
#
#   ASGI_GRPC_VENV  where the venv lives (default: <repo>/.venv)
#   PYTHON          the interpreter that creates it (default: python3; must be 3.10+)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASGI_GRPC_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "asgi_grpc needs Python 3.10 or newer; $PYTHON is $("$PYTHON" -V 2>&1)." >&2
        echo "Set PYTHON=/path/to/python3.x and retry." >&2
        exit 1
    fi
    echo "==> creating $VENV with $("$PYTHON" -V 2>&1)" >&2
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install: `pip install -e` costs
# seconds even when everything is already there.
_stamp="$VENV/.asgi_grpc-install-stamp"
_want="$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$ROOT/pyproject.toml")"
if [ ! -f "$_stamp" ] || [ "$(cat "$_stamp")" != "$_want" ]; then
    echo "==> pip install -e '.[dev]' into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" >&2
    echo "$_want" > "$_stamp"
fi
unset _stamp _want

export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
