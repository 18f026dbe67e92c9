# scripts/lib.sh - shared by scripts/*.sh: finding tools and installing what is missing.
# Source it; it defines functions and sets NALLOC_ROOT and NALLOC_JOBS.

NALLOC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NALLOC_JOBS=${NALLOC_JOBS:-$(nproc 2>/dev/null || echo 2)}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

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
