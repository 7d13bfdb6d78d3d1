#!/bin/sh
# Installs shardlyn-agent on this machine and joins it to the Shardlyn panel at PANEL.
#
#   curl -fsSL PANEL/install-agent.sh | sh -s -- --token shardlyn_reg_... [--ca-fingerprint SHA256]
#
# Served by the panel at /install-agent.sh with its URL and the SHA-256 of the agent
# binary it serves filled in. Steps: pin the panel's self-signed CA (when a fingerprint
# is given and the panel speaks https), download and check the agent binary, install it
# at /usr/local/bin/shardlyn-agent, register with the single-use token into
# /var/lib/shardlyn-agent, write a systemd unit and start it.
#
# Options:
#   --token TOKEN            single-use registration token (shardlyn_reg_...), required
#   --ca-fingerprint SHA256  the panel CA's SHA-256 fingerprint (ab:cd:... or plain hex)
#   --root DIR               install under DIR and touch nothing else (no systemctl)
#   --foreground             after registering, run the agent in the foreground (exec)
#                            instead of through systemd
# Re-runs are safe: an already registered data directory is kept (the token is not
# used again) and the binary and unit are replaced.
set -eu

PANEL='@PANEL_URL@'
AGENT_SHA256='@AGENT_SHA256@'

say() { printf 'install-agent: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# Everything runs from main, called on the last line: a download cut short runs nothing.
main() {
  TOKEN=''
  CA_FINGERPRINT=''
  ROOT=''
  FOREGROUND=0
  while [ $# -gt 0 ]; do
    case "$1" in
    --token | --ca-fingerprint | --root)
      case "${2-}" in "" | --*) die "$1 needs a value" ;; esac
      case "$1" in
      --token) TOKEN=$2 ;;
      --ca-fingerprint) CA_FINGERPRINT=$2 ;;
      --root) ROOT=$2 ;;
      esac
      shift 2
      ;;
    --token=*) TOKEN=${1#*=}; shift ;;
    --ca-fingerprint=*) CA_FINGERPRINT=${1#*=}; shift ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --foreground) FOREGROUND=1; shift ;;
    -h | --help)
      echo "usage: install-agent.sh --token shardlyn_reg_... [--ca-fingerprint SHA256] [--root DIR] [--foreground]"
      exit 0
      ;;
    *) die "unknown option '$1' (options: --token, --ca-fingerprint, --root, --foreground)" ;;
    esac
  done

  [ -n "$TOKEN" ] || die "missing --token: mint a registration token in the panel (Nodes > Add node) and pass it as --token shardlyn_reg_..."
  case "$TOKEN" in
  shardlyn_reg_*) ;;
  *) die "--token must be a registration token (shardlyn_reg_...)" ;;
  esac

  OS=$(uname -s)
  ARCH=$(uname -m)
  [ "$OS" = Linux ] || die "shardlyn-agent runs on Linux only; this machine runs $OS"
  case "$ARCH" in
  x86_64 | amd64) PLATFORM=linux-amd64 ;;
  aarch64 | arm64 | armv*) die "no ARM agent build exists yet: use an x86_64 (amd64) machine" ;;
  *) die "unsupported architecture $ARCH: only x86_64 (amd64) agents are available" ;;
  esac
  for tool in curl sha256sum base64 mktemp; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (install it and run this again)"
  done
  [ -n "$AGENT_SHA256" ] || die "the panel at $PANEL has no agent binary to serve (ask its operator to set [provision] agent_binary)"

  if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT" || die "cannot create --root $ROOT"
    ROOT=$(cd "$ROOT" && pwd)
  fi
  BIN_DIR=$ROOT/usr/local/bin
  BIN=$BIN_DIR/shardlyn-agent
  DATA_DIR=$ROOT/var/lib/shardlyn-agent
  UNIT_DIR=$ROOT/etc/systemd/system

  WORK=$(mktemp -d "${TMPDIR:-/tmp}/shardlyn-install.XXXXXX")
  cleanup() { rm -rf "$WORK"; }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  fetch() {
    curl -fsSL --retry 5 --retry-delay 2 --connect-timeout 15 "$@"
  }

  # The SHA-256 of a PEM certificate's DER, as plain lowercase hex.
  cert_sha256() {
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$1" | sed '/-----/d' |
      base64 -d | sha256sum | cut -d' ' -f1
  }

  CACERT=''
  case "$PANEL" in
  https://*)
    if [ -n "$CA_FINGERPRINT" ]; then
      WANT=$(printf '%s' "$CA_FINGERPRINT" | tr -d ':' | tr 'A-F' 'a-f')
      case "$WANT" in
      *[!0-9a-f]*) die "--ca-fingerprint must be a SHA-256 fingerprint (hex, with or without colons)" ;;
      esac
      [ ${#WANT} -eq 64 ] || die "--ca-fingerprint must be 32 bytes of hex (SHA-256), got ${#WANT} hex digits"
      # Not trusted yet: fetched unverified, then judged by the fingerprint given out of band.
      fetch -k -o "$WORK/ca.pem" "$PANEL/ca.pem" || die "could not download the panel's CA from $PANEL/ca.pem"
      GOT=$(cert_sha256 "$WORK/ca.pem")
      [ "$GOT" = "$WANT" ] || die "the panel's CA fingerprint is $GOT, not the expected $WANT: refusing to install (wrong panel, or someone in between)"
      CACERT=$WORK/ca.pem
      say "pinned the panel's CA ($GOT)"
    fi
    ;;
  http://*)
    [ -z "$CA_FINGERPRINT" ] || say "the panel speaks plain http: nothing to pin, --ca-fingerprint ignored"
    ;;
  *) die "the panel URL '$PANEL' is neither http:// nor https://" ;;
  esac

  say "downloading shardlyn-agent ($PLATFORM) from $PANEL"
  if [ -n "$CACERT" ]; then
    fetch --cacert "$CACERT" -o "$WORK/shardlyn-agent" "$PANEL/downloads/shardlyn-agent/$PLATFORM" ||
      die "could not download the agent from $PANEL/downloads/shardlyn-agent/$PLATFORM"
  else
    fetch -o "$WORK/shardlyn-agent" "$PANEL/downloads/shardlyn-agent/$PLATFORM" ||
      die "could not download the agent from $PANEL/downloads/shardlyn-agent/$PLATFORM"
  fi
  GOT=$(sha256sum "$WORK/shardlyn-agent" | cut -d' ' -f1)
  [ "$GOT" = "$AGENT_SHA256" ] || die "the downloaded agent's SHA-256 is $GOT, not $AGENT_SHA256: refusing to install it (run this again)"

  mkdir -p "$BIN_DIR" "$DATA_DIR" "$UNIT_DIR"
  chmod 0700 "$DATA_DIR"
  # Replaced by a rename, so a running agent keeps its old file until it restarts.
  cp "$WORK/shardlyn-agent" "$BIN_DIR/.shardlyn-agent.new"
  chmod 0755 "$BIN_DIR/.shardlyn-agent.new"
  mv -f "$BIN_DIR/.shardlyn-agent.new" "$BIN"
  say "installed $BIN"

  if [ -f "$DATA_DIR/agent.toml" ]; then
    say "$DATA_DIR is already registered with a panel: keeping it (delete $DATA_DIR/agent.toml to register again)"
  else
    set -- --panel "$PANEL" --data-dir "$DATA_DIR"
    [ -z "$CA_FINGERPRINT" ] || set -- "$@" --ca-fingerprint "$CA_FINGERPRINT"
    # The token goes through the environment, out of the process list.
    SHARDLYN_AGENT_REGISTRATION_TOKEN=$TOKEN "$BIN" register "$@" ||
      die "registration failed (see above); a used or expired token needs a new one from the panel"
    say "registered with $PANEL"
  fi

  # The unit names the paths of the machine that boots it, not of --root.
  # packaging/systemd/shardlyn-agent.service, filled in by the panel: the one agent unit.
  cat >"$UNIT_DIR/shardlyn-agent.service.new" <<'UNIT'
@AGENT_UNIT@
UNIT
  mv -f "$UNIT_DIR/shardlyn-agent.service.new" "$UNIT_DIR/shardlyn-agent.service"
  say "wrote $UNIT_DIR/shardlyn-agent.service"

  if [ "$FOREGROUND" -eq 1 ]; then
    cleanup
    trap - EXIT
    say "running the agent in the foreground"
    exec "$BIN" run --data-dir "$DATA_DIR"
  fi
  if [ -n "$ROOT" ]; then
    say "installed under $ROOT (no service started: --root)"
    exit 0
  fi
  command -v systemctl >/dev/null 2>&1 || die "systemctl not found: start the agent yourself with $BIN run --data-dir $DATA_DIR (or use --foreground)"
  systemctl daemon-reload
  systemctl enable --now shardlyn-agent
  # A re-run brings a new binary: an agent already running restarts onto it.
  systemctl restart shardlyn-agent
  say "shardlyn-agent is running (systemctl status shardlyn-agent)"
}

main "$@"
