#!/usr/bin/env bash
# The install test: Gatehouse as a person installs it. Builds the .deb twice (this build, and
# the same stamped as a newer version), installs the first with apt, opens the installed app
# under Xvfb and finds its window, uses the installed `gatehouse` CLI on the same data (the
# built-in model fetched with no Python: a python3 that records being run is first on the
# PATH), upgrades in place to the newer package, has it open a database an older build made
# (snapshotted, migrated, nothing lost), uninstalls, and checks the data is still there.
# Packages come from the debug build the end-to-end tests made (scripts/bundle --debug).
# Needs root (or sudo) for apt; the machine's own Gatehouse package, if any, is replaced.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
work=$(mktemp -d)
app_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
  $sudo apt-get remove -y -qq gatehouse >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "install test: FAILED: $*" >&2; exit 1; }
ok() { echo "install test: $*"; }

# Two packages: this build as 0.1.0-test.1, and as 0.1.0-test.2 (the upgrade).
for v in 1 2; do
  ./scripts/bundle --debug --version "0.1.0-test.$v" >"$work/bundle.log" 2>&1 || { cat "$work/bundle.log" >&2; fail "scripts/bundle"; }
  cp target/debug/bundle/deb/*.deb "$work/$v.deb"
done
ok "built $(ls target/debug/bundle/deb/ target/debug/bundle/rpm/ | grep -E '\.(deb|rpm)$' | tr '\n' ' ')"

# The .rpm: read with rpm (installed here to read it; this Debian machine does not install it):
# the same dependencies and files as the .deb.
command -v rpm >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rpm >/dev/null
rpm_file=$(ls -t target/debug/bundle/rpm/*.rpm 2>/dev/null | head -1)
[ -n "$rpm_file" ] || fail "scripts/bundle made no .rpm"
[[ "$(rpm -qp --qf '%{VERSION}' "$rpm_file" 2>/dev/null)" == *test.2* ]] || fail "the newest .rpm is not this build's ($rpm_file)"
requires=$(rpm -qp --requires "$rpm_file" 2>/dev/null)
for need in bubblewrap libwebkit2gtk-4.1.so.0; do
  [[ "$requires" == *"$need"* ]] || fail "the .rpm does not require $need ($requires)"
done
files=$(rpm -qlp "$rpm_file" 2>/dev/null)
for file in /usr/bin/gatehouse /usr/bin/gatehouse-desktop /usr/share/applications/Gatehouse.desktop \
  /usr/share/icons/hicolor/{16x16,32x32,48x48,64x64,128x128,256x256,512x512}/apps/gatehouse-desktop.png; do
  grep -qx "$file" <<<"$files" || fail "the .rpm does not install $file"
done
ok "the .rpm ($(basename "$rpm_file")) requires bubblewrap and WebKitGTK and installs the app, the CLI, the desktop entry and the icons"

# Install with apt, as a person would (dependencies resolved from the package's Depends).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$work/1.deb" >/dev/null
[ "$(dpkg-query -W -f='${Version}' gatehouse)" = "0.1.0-test.1" ] || fail "the package is not installed"
depends=$(dpkg-query -W -f='${Depends}' gatehouse)
for need in bubblewrap libwebkit2gtk-4.1-0; do
  [[ "$depends" == *"$need"* ]] || fail "the package does not depend on $need ($depends)"
done
[ "$(command -v gatehouse)" = /usr/bin/gatehouse ] || fail "gatehouse is not on the PATH"
desktop=/usr/share/applications/Gatehouse.desktop
grep -q '^Exec=gatehouse-desktop' "$desktop" || fail "no desktop entry runs the app"
grep -q '^Categories=.*Development' "$desktop" || fail "the desktop entry has no category"
for size in 16x16 32x32 48x48 64x64 128x128 256x256 512x512; do
  [ -f "/usr/share/icons/hicolor/$size/apps/gatehouse-desktop.png" ] || fail "no $size icon"
done
ok "installed $(dpkg-query -W -f='${Package} ${Version}' gatehouse): /usr/bin/gatehouse, desktop entry, icons 16-512"

# The installed CLI: the built-in model with no Python, then a job and a chat on that data.
data="$work/data"
mkdir -p "$work/bin"
printf '#!/bin/sh\ntouch %s/python-was-run\nexit 99\n' "$work" >"$work/bin/python3"
chmod +x "$work/bin/python3"
cp "$work/bin/python3" "$work/bin/python"
PATH="$work/bin:$PATH" gatehouse --data-dir "$data" models fetch 2>"$work/fetch.log" ||
  { cat "$work/fetch.log" >&2; fail "models fetch"; }
[ ! -e "$work/python-was-run" ] || fail "models fetch ran Python"
gatehouse --data-dir "$data" models list | grep -q 'SmolLM2-135M-Instruct.Q4_1 (default)  98 MB' || fail "the model is not listed"
job=$(gatehouse --data-dir "$data" --json jobs submit exec -- echo installed | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
[ -n "$job" ] || fail "jobs submit"
gatehouse --data-dir "$data" chat "Say hello." >"$work/reply.txt" || fail "chat with the built-in model"
[ -s "$work/reply.txt" ] || fail "the built-in model said nothing"
ok "the installed CLI fetched the model without Python, queued job $job, and chatted: $(head -c 60 "$work/reply.txt" | tr '\n' ' ')"

# The installed app under Xvfb, on the same data: its window appears, and its worker pool runs
# the job the CLI queued.
dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" \
  sh -c 'gatehouse-desktop --data-dir "$1" & pid=$!
         for _ in $(seq 1 600); do
           if [ ! -f "$2" ] && xwininfo -root -tree 2>/dev/null | grep -q "\"Gatehouse\""; then echo shown > "$2"; fi
           if gatehouse --data-dir "$1" --json jobs show "$3" | grep -q "\"state\":\"succeeded\""; then echo ran > "$4"; fi
           { [ -f "$2" ] && [ -f "$4" ]; } && break
           kill -0 $pid 2>/dev/null || break
           sleep 0.1
         done
         kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' _ "$data" "$work/window" "$job" "$work/ran" >"$work/app.log" 2>&1 || true
[ -f "$work/window" ] || { cat "$work/app.log" >&2; fail "the installed app showed no window"; }
[ -f "$work/ran" ] || { cat "$work/app.log" >&2; fail "the installed app did not run job $job"; }
ok "the installed app opened its window and ran job $job"

# Upgrade in place: the data is still all there.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$work/2.deb" >/dev/null
[ "$(dpkg-query -W -f='${Version}' gatehouse)" = "0.1.0-test.2" ] || fail "the upgrade did not install"
gatehouse --data-dir "$data" jobs logs "$job" | grep -qx installed || fail "the job did not survive the upgrade"
gatehouse --data-dir "$data" chats list | grep -q 'Say hello' || fail "the conversation did not survive the upgrade"
ok "upgraded in place to $(dpkg-query -W -f='${Version}' gatehouse); job $job and the conversation are there"

# A database an older Gatehouse made (schema 15, tests/install/fixtures/README.md), opened by
# the upgraded package: snapshotted first, then migrated, and all of it still there.
old="$work/old-data"
mkdir -p "$old"
cp tests/install/fixtures/gatehouse-schema15.db "$old/gatehouse.db"
gatehouse --data-dir "$old" chats list >"$work/old-chats.txt" 2>"$work/old.log" || { cat "$work/old.log" >&2; fail "the upgraded package could not open an older database"; }
grep -q 'What is the capital of France' "$work/old-chats.txt" || fail "the older database's conversation is missing after the upgrade"
snapshot=$(ls "$old/snapshots/" | grep -E -- '-v15-before-v[0-9]+\.db$' || true)
[ -n "$snapshot" ] || fail "no snapshot of the schema-15 database was taken before it was upgraded ($(ls "$old/snapshots" 2>&1))"
gatehouse --data-dir "$old" chats show 1 | grep -q 'capital of France' || fail "the older conversation's messages are missing"
gatehouse --data-dir "$old" jobs logs 1 | grep -qx 'made by an older Gatehouse' || fail "the older exec job's output is missing"
[ "$(gatehouse --data-dir "$old" --json jobs show 2 | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')" = succeeded ] || fail "the older prompt job is not there as it ended"
gatehouse --data-dir "$old" gateways list | grep -q llama || fail "the older database's gateway is missing"
ok "a schema-15 database from an older build opened after the upgrade: snapshot $snapshot, conversation, jobs and gateway there"

# Uninstall: the program goes, the data stays.
DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq gatehouse >/dev/null
[ ! -e /usr/bin/gatehouse ] && [ ! -e /usr/bin/gatehouse-desktop ] || fail "uninstall left the program"
[ -f "$data/gatehouse.db" ] && [ -f "$data/models/SmolLM2-135M-Instruct.Q4_1.gguf" ] || fail "uninstall removed the data"
ok "uninstalled; the data directory is untouched"
