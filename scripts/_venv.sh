# Sourced by scripts/test, scripts/demo and scripts/lock: a .venv with the development lock
# (runtime + charts + test and docs tools, hash-checked) and the project installed in editable mode, built by
# the hash-checked backend in requirements-build.lock, never by whatever setuptools happens to be newest.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
LOCKS=(requirements-dev.lock requirements-build.lock)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat "${LOCKS[@]}" pyproject.toml | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
if [ ! -f "$stamp" ]; then
  count=$(grep -c '^[a-z]' "${LOCKS[0]}" || true)
  echo "== first run (or the locks changed): installing rollback-bot and its $count locked packages" \
       "(${LOCKS[0]}: runtime, charts, test and docs tools) into $VENV; this takes a minute or two" >&2
  pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --require-hashes -r "${LOCKS[0]}" -r "${LOCKS[1]}"
  "${pip[@]}" --no-deps --no-build-isolation -e .
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "== installed; next runs start at once" >&2
fi
