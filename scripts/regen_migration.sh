#!/usr/bin/env bash
# Pre-release only (nothing has shipped yet): rebuild migrations/versions/0001_initial_schema.py
# from bot/store/models.py. After the first release, add revisions with `veille db revision`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
tmp=$(mktemp -d)
mv migrations/versions/0001_initial_schema.py "$tmp/old.py"
if ! VEILLE_DATABASE_URL="sqlite+aiosqlite:///$tmp/scratch.db" $PY -m bot.cli db revision -m "initial schema" >/dev/null; then
  mv "$tmp/old.py" migrations/versions/0001_initial_schema.py; echo "autogenerate failed" >&2; exit 1
fi
new=$(ls migrations/versions/*_initial_schema.py | grep -v 0001_initial_schema.py | head -1)
rev=$(basename "$new" | cut -d_ -f1)
sed -i "s/$rev/0001/g; s/^Create Date: .*/Create Date: pre-release/" "$new"
mv "$new" migrations/versions/0001_initial_schema.py
rm -rf "$tmp"
echo "migrations/versions/0001_initial_schema.py rebuilt from the models"
