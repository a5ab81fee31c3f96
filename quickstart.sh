#!/usr/bin/env bash
# One command for the main job on a fresh Debian/Ubuntu machine, as root:
#
#   ./quickstart.sh [rsi-bench run options]     (default: --limit 10 --generations 3 --run-dir runs/demo)
#   ./quickstart.sh --dry-run                   the plan of steps on this machine; changes nothing
#   ./quickstart.sh --setup-only                every step but the run (bash .ci/run uses it)
#
# Each step is named as it runs and skipped, saying so, when it is already done, so running it
# again is cheap. Root is needed only when a step still has to install packages or start
# dockerd; where the script cannot go on it prints one line saying what to do and exits 2.
#
# The probes can be pointed elsewhere (the tests fake a non-Debian system and a full disk):
#   QUICKSTART_DEBIAN_VERSION  file that marks a Debian-like system    (/etc/debian_version)
#   QUICKSTART_OS_RELEASE      file that names the system               (/etc/os-release)
#   QUICKSTART_MIN_FREE_MB     free space every step's filesystem needs (computed per step)
#   QUICKSTART_PYTHON          the Python to install into and run with  (python3)
#   QUICKSTART_LDCONFIG        what lists the system's shared libraries (ldconfig)
#   QUICKSTART_APT_EXTRA       more apt packages, e.g. chromium for the report's browser test
#   QUICKSTART_PIP_EXTRAS      the package's extras                    (local)
#   QUICKSTART_DOCKERD_LOG     where a dockerd started here logs       (/var/log/rsi-bench-dockerd.log)
#   QUICKSTART_DOCKERD_PIDFILE where to write the pid of that dockerd   (none)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
REPO=$PWD
ME=./quickstart.sh
DEFAULT_RUN=(--limit 10 --generations 3 --run-dir runs/demo)
export DEBIAN_FRONTEND=noninteractive

mode=run
case "${1:-}" in
  --dry-run) mode=dry; shift ;;
  --setup-only) mode=setup; shift ;;
  -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
RUN_ARGS=("$@")
[ ${#RUN_ARGS[@]} -gt 0 ] || RUN_ARGS=("${DEFAULT_RUN[@]}")

step_no=0
step() { step_no=$((step_no + 1)); printf '== step %d/6: %s\n' "$step_no" "$*"; }
skip() { printf '   done already: %s; skipping\n' "$*"; }
plan() { printf '   would %s\n' "$*"; }
stop() { printf 'quickstart.sh: cannot proceed: %s\n' "$*" >&2; exit 2; }
quote() { printf '%q ' "$@" | sed 's/ $//'; }

# ---------------------------------------------------------------- probes (they change nothing)

PY=${QUICKSTART_PYTHON:-python3}
[ -z "${QUICKSTART_PYTHON:-}" ] && [ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python
EXTRAS=${QUICKSTART_PIP_EXTRAS:-local}

# sbin is searched too: dockerd and debootstrap live there, off a normal user's PATH.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
debian_like() { [ -f "${QUICKSTART_DEBIAN_VERSION:-/etc/debian_version}" ] && have apt-get; }
system_name() {
  local f=${QUICKSTART_OS_RELEASE:-/etc/os-release}
  if [ -r "$f" ]; then (. "$f" && printf '%s' "${PRETTY_NAME:-${NAME:-this system}}"); else
    printf 'this system'; fi
}

# The local model's llama.cpp build links GCC's OpenMP runtime, which a minimal system lacks.
# (grep reads all of ldconfig's output: with -q it could exit first and fail the pipe.)
have_libgomp() {
  local ldconfig=${QUICKSTART_LDCONFIG:-}
  [ -n "$ldconfig" ] || ldconfig=$(command -v ldconfig || ls /usr/sbin/ldconfig /sbin/ldconfig \
    2>/dev/null | head -1)
  "${ldconfig:-ldconfig}" -p 2>/dev/null | grep 'libgomp\.so\.1 ' >/dev/null
}

# apt packages still missing: the three the sandboxes need (found by their commands, so a
# docker installed from Docker's own packages counts), a Python if there is none, the extras.
missing_packages() {
  local out=()
  { have docker && have dockerd; } || out+=(docker.io)
  have debootstrap || out+=(debootstrap)
  have bwrap || out+=(bubblewrap)
  if ! have "$PY"; then out+=(python3 python3-venv)
  elif needs_venv && ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then out+=(python3-venv)
  fi
  [[ ,$EXTRAS, == *,local,* ]] && ! have_libgomp && out+=(libgomp1)
  local p
  for p in ${QUICKSTART_APT_EXTRA:-}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  [ ${#out[@]} -eq 0 ] || printf '%s\n' "${out[@]}"
}

python_ok() { "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

# A system Python that pip must not write to (PEP 668: Debian 12, Ubuntu 23.04 and later) gets
# the package in a virtual environment in the checkout instead.
needs_venv() {
  [ "$PY" != "$REPO/.venv/bin/python" ] && "$PY" -c '
import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(not (os.path.exists(marker) and sys.prefix == sys.base_prefix))' 2>/dev/null
}

# The package imports from this checkout, with the local model's server and weights.
package_ok() {  # prints why not
  (cd / && "$PY" - "$REPO") <<'EOF' 2>&1 | tail -1
import os, sys
import rsi_bench, xllamacpp  # noqa: F401
from rsi_bench.models.local import DEFAULT, KNOWN, cache_dir, chunk_files
here = os.path.realpath(sys.argv[1]) + os.sep
if not os.path.realpath(rsi_bench.__file__).startswith(here):
    sys.exit(f"rsi_bench imports from {os.path.dirname(rsi_bench.__file__)}, not from here")
if not (cache_dir() / f"{DEFAULT}.gguf").exists():
    chunk_files(KNOWN[DEFAULT])
EOF
  return "${PIPESTATUS[0]}"
}

docker_ok() { have docker && docker info >/dev/null 2>&1; }
docker_denied() {
  local out; out=$(docker info 2>&1) || true
  [[ $out == *"permission denied"* ]]
}

image_ok() {  # prints why not
  "$PY" -c '
from rsi_bench.sandbox.docker_backend import _client
from rsi_bench.sandbox.image import check_image
check_image(_client())' 2>&1 | tail -1
  return "${PIPESTATUS[0]}"
}

free_mb() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }'; }
device() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $1 }'; }

# ---------------------------------------------------------------- step 1: can we proceed?

step "check this machine (root, Debian-like, Python, free disk)"
mapfile -t APT < <(missing_packages)
python_installed=1; have "$PY" || python_installed=0
pkg_done=0; [ "$python_installed" = 1 ] && package_ok >/dev/null && pkg_done=1
dockerd_done=0; docker_ok && dockerd_done=1
image_done=0; image_why=""
if [ "$dockerd_done" = 1 ] && [ "$pkg_done" = 1 ]; then
  image_why=$(image_ok) && image_done=1
fi

root_for=()
[ ${#APT[@]} -gt 0 ] && root_for+=("apt-get install ${APT[*]}")
docker_denied_here=0; [ "$dockerd_done" = 0 ] && docker_denied && docker_denied_here=1
[ "$dockerd_done" = 0 ] && [ "$docker_denied_here" = 0 ] && root_for+=("start dockerd")
problem=""
if [ ${#APT[@]} -gt 0 ] && ! debian_like; then
  problem="$(system_name) is not Debian or Ubuntu (no /etc/debian_version or apt-get): install \
${APT[*]} with its package manager (docker.io is Docker Engine), start dockerd, then run $ME again"
elif [ ${#root_for[@]} -gt 0 ] && [ "$(id -u)" != 0 ]; then
  again=$ME; [ $# -gt 0 ] && again="$ME $(quote "$@")"
  needs=$(IFS=';'; printf '%s' "${root_for[*]}" | sed 's/;/; /g')
  problem="not root, and these steps need root ($needs): run sudo $again"
elif [ "$docker_denied_here" = 1 ]; then
  again=$ME; [ $# -gt 0 ] && again="$ME $(quote "$@")"
  problem="dockerd is running, but uid $(id -u) may not use it: run sudo $again, or add this \
user to the docker group (usermod -aG docker USER)"
elif [ "$python_installed" = 1 ] && ! python_ok; then
  problem="$("$PY" -V 2>&1) is too old: rsi-bench needs Python 3.11 or later; install it \
(e.g. apt-get install python3.11 python3.11-venv) and run QUICKSTART_PYTHON=python3.11 $ME"
else
  # Free space each pending step needs on its filesystem (MB, rounded up generously):
  # packages and images under /var, the Python packages, model and run under the checkout.
  var_need=0; repo_need=512
  [ ${#APT[@]} -gt 0 ] && var_need=$((var_need + 1024))
  [ "$image_done" = 0 ] && var_need=$((var_need + 1536))
  [ "$pkg_done" = 0 ] && repo_need=$((repo_need + 2048))
  if [ -n "${QUICKSTART_MIN_FREE_MB:-}" ]; then var_need=$QUICKSTART_MIN_FREE_MB
    repo_need=$QUICKSTART_MIN_FREE_MB; fi
  var_dir=/var/lib; [ -d /var/lib/docker ] && var_dir=/var/lib/docker
  if [ "$(device "$var_dir")" = "$(device "$REPO")" ] && [ -z "${QUICKSTART_MIN_FREE_MB:-}" ]; then
    repo_need=$((repo_need + var_need)); var_need=0
  fi
  for check in "$REPO:$repo_need" "$var_dir:$var_need"; do
    dir=${check%:*}; need=${check##*:}; have_mb=$(free_mb "$dir")
    if [ "$need" -gt 0 ] && [ "${have_mb:-0}" -lt "$need" ]; then
      problem="too little free disk: the remaining steps need $need MB free on the filesystem \
of $dir, which has ${have_mb:-0} MB; free some space and run $ME again"
      break
    fi
  done
fi
[ -n "$problem" ] && stop "$problem"
echo "   ok: $(system_name), uid $(id -u), ${PY}"

# ---------------------------------------------------------------- step 2: system packages

step "system packages (docker.io, debootstrap, bubblewrap${QUICKSTART_APT_EXTRA:+, $QUICKSTART_APT_EXTRA})"
if [ ${#APT[@]} -eq 0 ]; then skip "all installed"
elif [ "$mode" = dry ]; then plan "apt-get install ${APT[*]}"
else
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${APT[@]}" >/dev/null
  echo "   installed ${APT[*]}"
fi

# ---------------------------------------------------------------- step 3: the Python package

extras=$EXTRAS
step "python package rsi-bench[$extras] from this checkout"
if [ "$pkg_done" = 1 ] && [ "$extras" = local ]; then skip "rsi_bench imports from here, with the local model"
elif [ "$mode" = dry ]; then
  if needs_venv; then
    plan "create .venv ($PY is externally managed) and run .venv/bin/python -m pip install -e '.[$extras]'"
  else
    plan "$PY -m pip install -e '.[$extras]'"
  fi
else
  if needs_venv; then
    echo "   $PY is externally managed (PEP 668): installing into $REPO/.venv"
    "$PY" -m venv "$REPO/.venv"
    PY=$REPO/.venv/bin/python
  fi
  "$PY" -m pip install -q -e ".[$extras]"
  why=$(package_ok) || stop "the package installed, but $PY cannot use it: ${why:-no reason given}"
  echo "   installed with $PY"
fi

# ---------------------------------------------------------------- step 4: the docker daemon

step "docker daemon"
# probed again: installing docker.io may have started its service
[ "$mode" != dry ] && [ "$dockerd_done" = 0 ] && docker_ok && dockerd_done=1
if [ "$dockerd_done" = 1 ]; then skip "docker info answers"
elif [ "$mode" = dry ]; then plan "start dockerd in the background, logging to ${QUICKSTART_DOCKERD_LOG:-/var/log/rsi-bench-dockerd.log}"
else
  log=${QUICKSTART_DOCKERD_LOG:-/var/log/rsi-bench-dockerd.log}
  setsid dockerd >"$log" 2>&1 </dev/null &
  pid=$!
  [ -n "${QUICKSTART_DOCKERD_PIDFILE:-}" ] && echo "$pid" >"$QUICKSTART_DOCKERD_PIDFILE"
  for _ in $(seq 1 60); do docker_ok && break; kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  docker_ok || stop "dockerd did not answer within 60 s; its log $log ends: \
$(tail -3 "$log" | tr '\n' ' ')"
  echo "   started dockerd in the background (pid $pid), logging to $log; it keeps running \
after this script (stop it with: kill $pid)"
fi

# ---------------------------------------------------------------- step 5: the judge image

step "judge image (rsi-bench sandbox setup, then sandbox doctor)"
# probed again where step 1 could not: before the package and the daemon were there
[ "$mode" != dry ] && [ "$image_done" = 0 ] && image_why=$(image_ok) && image_done=1
if [ "$image_done" = 1 ]; then skip "the judge image is built from this checkout's runner"
elif [ "$mode" = dry ]; then
  plan "rsi-bench sandbox setup${image_why:+ ($image_why)}, then rsi-bench sandbox doctor"
else
  "$PY" -m rsi_bench.cli sandbox setup
  "$PY" -m rsi_bench.cli sandbox doctor
fi

# ---------------------------------------------------------------- step 6: the main job

step "main job: rsi-bench run $(quote "${RUN_ARGS[@]}")"
if [ "$mode" = setup ]; then echo "   not run (--setup-only)"; exit 0; fi
if [ "$mode" = dry ]; then plan "run $PY -m rsi_bench.cli run $(quote "${RUN_ARGS[@]}")"; exit 0; fi
exec "$PY" -m rsi_bench.cli run "${RUN_ARGS[@]}"
