#!/usr/bin/env bash
# deps.sh - installs what attune needs from Debian's packages, once.
# Idempotent and quiet when everything is there. Usage: deps.sh build|test|bench
set -euo pipefail
what=${1:-build}

build_pkgs="gcc make cmake ninja-build pkg-config libyaml-dev libxxhash-dev libcjson-dev libssl-dev libcurl4-openssl-dev libh2o-evloop-dev libwslay-dev tzdata"
test_pkgs="clang libclang-rt-14-dev libcmocka-dev curl python3 procps"
bench_pkgs="wrk nginx-light redis-server redis-tools libhiredis-dev liblmdb-dev valgrind linux-perf util-linux openjdk-17-jdk-headless maven"

pkgs="$build_pkgs"
case "$what" in
  build) ;;
  test) pkgs="$pkgs $test_pkgs" ;;
  bench) pkgs="$pkgs $test_pkgs $bench_pkgs" ;;
  lint) pkgs="$pkgs clang-format clang-tidy cppcheck" ;;
  *) echo "deps.sh: unknown set '$what'" >&2; exit 2 ;;
esac

missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
