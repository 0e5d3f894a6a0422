#!/usr/bin/env bash
# The test command: installs what the tests need from Debian (PostgreSQL's server binaries, Chromium, the
# Fashion-MNIST package, fonts for figures), builds, runs every test, and ends
# with "N passed, N failed". Needs root or sudo only when a package is missing. Extra arguments go to dotnet test
# (e.g. ./test.sh --filter FullyQualifiedName~Training). Each test prints a line as it ends ("Passed <name> [time]").
# ./test.sh --fast: the inner loop, without the browser, the child-process and process-killing, outage, PostgreSQL,
# worker and corpus classes, nor the tests marked [Trait("Speed", "Slow")] (the README says how long each takes).
set -uo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

packages=(dataset-fashion-mnist postgresql chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=(); [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  echo "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "apt-get install ${missing[*]} failed: install them yourself, then run ./test.sh again"; echo "0 passed, 1 failed"; exit 1; }
fi

if [[ ${1:-} == --fast ]]; then
  shift
  slow=(Browser ChildProcessTests RepeatedJobTests KillResumeTests DatabaseOutageTests PostgresTests WorkerTests CorpusTests)
  filter=$(printf '&FullyQualifiedName!~%s' "${slow[@]}")
  set -- --filter "Speed!=Slow$filter" "$@"   # and the tests marked [Trait("Speed", "Slow")] (over ~5 s each)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test IdentityInit.sln --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# The summary of each test assembly: "Total tests: N" then "     Passed: N" and "     Failed: N" lines.
read -r passed failed < <(grep -aE '^ +(Passed|Failed): +[0-9]+' "$log" |
  awk '$1 == "Passed:" {p += $2} $1 == "Failed:" {f += $2} END {print p + 0, f + 0}')
if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; fi   # build or host failure: no test summary
# A whole run (no arguments) also checks the layout .editorconfig describes (whitespace, and lines of at most 140
# characters; seconds): a file off it counts as one failed test, named with the fix (`dotnet format whitespace IdentityInit.sln`).
if ((!$#)); then
  if ! dotnet format whitespace IdentityInit.sln --verify-no-changes -v q > "$log.format" 2>&1; then
    echo "  Failed layout: run 'dotnet format whitespace IdentityInit.sln' (.editorconfig):"
    grep -a 'WHITESPACE' "$log.format" | sed "s#$PWD/##; s#^#    #" | head -20
    failed=$((failed + 1)); status=1
  fi
  rm -f "$log.format"
  # Lines stay within .editorconfig's max_line_length (140), which the formatter does not enforce; generated migrations aside.
  long=$(find IdentityInit.* bench build \( -name bin -o -name obj -o -name Migrations \) -prune -o \( -name '*.cs' -o -name '*.razor' \) -print0 |
    xargs -0 awk 'length > 140 { print "    " FILENAME ":" FNR ": " length " characters" }')
  if [[ -n $long ]]; then
    echo "  Failed layout: lines over 140 characters (.editorconfig's max_line_length):"
    echo "$long" | head -20
    failed=$((failed + 1)); status=1
  fi
fi
# Repeat each failure (its name, message and the top of its stack) here, where a reader of the log's tail finds it.
if ((failed)); then
  echo "Failed tests:"
  awk '/^  (Passed|Skipped) / {keep = 0}
       /^  Failed [A-Za-z]/ {keep = 1; n = 0}
       /^\[xUnit.net|^Test Run |^Total tests:/ {keep = 0}
       keep && n++ < 40' "$log"
fi
echo "$passed passed, $failed failed"
[[ $status -eq 0 && $failed -eq 0 && $passed -gt 0 ]]
