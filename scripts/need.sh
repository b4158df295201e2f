# Sourced by test scripts (`. scripts/need.sh`): need COMMAND-OR-FILE DEBIAN-PACKAGE installs the
# package when the command (or file) is missing, as root with apt-get (a fresh CI machine), and
# otherwise only says what is missing (the step that uses it then fails on its own).
APT_UPDATED=${APT_UPDATED:-}
need() { # need COMMAND-OR-FILE PACKAGE
  if command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    [ -n "$APT_UPDATED" ] || { apt-get update -qq >/dev/null && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "missing $1 (Debian package $2)" >&2
  fi
}
