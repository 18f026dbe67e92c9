# scripts/lib.sh - shared by scripts/*.sh: finding tools and installing what is missing.
# Source it; it defines functions and sets NALLOC_ROOT and NALLOC_JOBS.

NALLOC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NALLOC_JOBS=${NALLOC_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Bold headings on a terminal; plain text when stderr is a file or a pipe (CI logs), or when
# NO_COLOR is set (https://no-color.org).
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
  log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
else
  log() { printf '==> %s\n' "$*" >&2; }
fi
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# configure_build <dir> <log> <cmake args>...: configure, showing nalloc's own status lines and
# the time taken; the full output goes to <log>, and is shown if configuring fails.
configure_build() {
  local dir=$1 logfile=$2 t0=$SECONDS rc
  shift 2
  mkdir -p "$dir"
  set +e
  cmake -S . -B "$dir" "$@" 2>&1 | tee "$logfile" | { grep --line-buffered -E '^-- nalloc:' || true; } |
    sed -u 's/^-- /    /' >&2
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { cat "$logfile" >&2; die "configure failed ($logfile)"; }
  log "configured in $((SECONDS - t0)) s"
}

# build_targets <dir> <log> [<target>...]: build (all targets when none are named), showing each
# target as it is finished; the full output goes to <log>, and its tail is shown on failure.
build_targets() {
  local dir=$1 logfile=$2 t0=$SECONDS rc args=()
  shift 2
  [ $# -eq 0 ] || args=(--target "$@")
  set +e
  # Makefiles print "[ 40%] Built target x", Ninja "[12/40] ...": keep those, without colours.
  cmake --build "$dir" -j "$NALLOC_JOBS" "${args[@]}" 2>&1 | tee "$logfile" |
    sed -u -E 's/\x1b\[[0-9;]*[mK]//g' |
    { grep --line-buffered -E '^\[ *[0-9]+%\] Built target|^\[[0-9]+/[0-9]+\]' || true; } |
    sed -u 's/^/    /' >&2
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { tail -n 60 "$logfile" >&2; die "build failed ($logfile)"; }
  log "built in $((SECONDS - t0)) s"
}

# find_matplotlib: print a Python interpreter that imports matplotlib, installing it when missing
# (pip for the python3 on PATH; where pip cannot, Debian's python3-matplotlib for /usr/bin/python3).
find_matplotlib() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import matplotlib' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    log "installing matplotlib with pip"
    if PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
      python3 -m pip install --quiet matplotlib >&2 &&
      python3 -c 'import matplotlib' 2>/dev/null; then
      echo python3
      return 0
    fi
  fi
  (apt_install python3-matplotlib) || return 1
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null && echo /usr/bin/python3
}

# apt_install <package>...: install Debian packages that are missing, as root; otherwise say what
# to install and fail.
_apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})"
  fi
  log "installing ${missing[*]}"
  if [ $_apt_updated -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
}

# need_build_tools: a C compiler, CMake, pkg-config and cmocka.
need_build_tools() {
  command -v cmake >/dev/null 2>&1 || apt_install cmake
  command -v cc >/dev/null 2>&1 || apt_install gcc
  command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
  apt_install libcmocka-dev
}

# find_nvcc: put the CUDA toolkit on PATH when it is installed in the usual place.
find_nvcc() {
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
  fi
  command -v nvcc >/dev/null 2>&1
}

# have_gpu: true when a CUDA device is usable (driver present and at least one GPU).
have_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'
}
