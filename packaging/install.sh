#!/bin/sh
# Installs Shardlyn on this machine from binaries at hand, with systemd units.
#
#   install.sh panel [--bin-dir DIR] [--listen ADDR:PORT] [--public-url URL]
#                    [--admin-email EMAIL]
#   install.sh agent --panel URL --token shardlyn_reg_... [--ca-fingerprint SHA256]
#                    [--bin-dir DIR]
#
# panel: the `shardlyn` system user, /usr/local/bin/shardlyn (and the shardlyn-agent the
#   panel serves to new nodes), /etc/shardlyn/config.toml with generated secrets (mode
#   0640 root:shardlyn), /var/lib/shardlyn, the shardlyn.service unit, migrations, and
#   the first admin with a generated password, printed once and kept in
#   /var/lib/shardlyn/initial-admin.txt (mode 0600).
# agent: /usr/local/bin/shardlyn-agent, registration into /var/lib/shardlyn-agent with
#   the single-use token, and the shardlyn-agent.service unit (the same unit the panel's
#   /install-agent.sh writes on cloud nodes).
#
# --bin-dir holds the built `shardlyn` and `shardlyn-agent` (default: this script's
# directory, else ./target/release). The units are read from systemd/ beside this
# script. Re-runs are safe: the configuration, its secrets, the admin and an agent's
# registration are kept; binaries and units are replaced and running services restarted.
# When systemd is not running (a container being prepared, a chroot) units are enabled
# but nothing is started.
set -eu

say() { printf 'install: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=/usr/local/bin
UNIT_DIR=/etc/systemd/system
CONF_DIR=/etc/shardlyn
CONF=$CONF_DIR/config.toml
DATA=/var/lib/shardlyn
AGENT_DATA=/var/lib/shardlyn-agent

usage() {
  sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//'
}

# 32 random bytes as 64 hex digits.
random_hex() {
  od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n'
}

# Whether systemd is PID 1 here (else units are only enabled).
systemd_running() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# Copies binary $1 from the binary directory to $BIN, replaced by a rename so a running
# service keeps its old file until it restarts.
install_binary() {
  [ -x "$BIN_DIR/$1" ] || die "$BIN_DIR/$1 is missing: build it (cargo build --release) or pass --bin-dir"
  mkdir -p "$BIN"
  cp "$BIN_DIR/$1" "$BIN/.$1.new"
  chmod 0755 "$BIN/.$1.new"
  mv -f "$BIN/.$1.new" "$BIN/$1"
  say "installed $BIN/$1"
}

install_unit() {
  [ -f "$HERE/systemd/$1" ] || die "$HERE/systemd/$1 is missing (keep systemd/ beside install.sh)"
  mkdir -p "$UNIT_DIR"
  cp "$HERE/systemd/$1" "$UNIT_DIR/.$1.new"
  chmod 0644 "$UNIT_DIR/.$1.new"
  mv -f "$UNIT_DIR/.$1.new" "$UNIT_DIR/$1"
  say "wrote $UNIT_DIR/$1"
}

# Enables unit $1 and (re)starts it when systemd runs.
start_unit() {
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable "$1"
    systemctl restart "$1"
    say "$1 is running (systemctl status $1)"
  else
    command -v systemctl >/dev/null 2>&1 || die "systemctl not found: this script installs systemd units"
    systemctl enable "$1"
    say "$1 enabled; systemd is not running here, so it starts on the next boot"
  fi
}

# Runs a command as the shardlyn user.
as_shardlyn() {
  if command -v runuser >/dev/null 2>&1; then
    runuser -u shardlyn -- "$@"
  else
    setpriv --reuid=shardlyn --regid=shardlyn --init-groups -- "$@"
  fi
}

panel() {
  LISTEN=0.0.0.0:8443
  PUBLIC_URL=''
  ADMIN_EMAIL=admin@shardlyn.local
  while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir | --listen | --public-url | --admin-email)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
      --bin-dir) BIN_DIR=$2 ;;
      --listen) LISTEN=$2 ;;
      --public-url) PUBLIC_URL=$2 ;;
      --admin-email) ADMIN_EMAIL=$2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' for panel (--bin-dir, --listen, --public-url, --admin-email)" ;;
    esac
  done
  case "$LISTEN" in
  *:*) ;;
  *) die "--listen takes ADDRESS:PORT, e.g. 0.0.0.0:8443" ;;
  esac
  PORT=${LISTEN##*:}
  case "$PORT" in
  '' | *[!0-9]*) die "--listen: '$PORT' is not a port" ;;
  esac

  install_binary shardlyn
  # Served by the panel to nodes that join it (/downloads/shardlyn-agent/linux-amd64).
  install_binary shardlyn-agent

  if ! getent group shardlyn >/dev/null; then
    groupadd --system shardlyn
  fi
  if ! getent passwd shardlyn >/dev/null; then
    useradd --system --gid shardlyn --home-dir "$DATA" --no-create-home \
      --shell /usr/sbin/nologin --comment "Shardlyn panel" shardlyn
    say "created the shardlyn system user"
  fi
  mkdir -p "$DATA"
  chown shardlyn:shardlyn "$DATA"
  chmod 0750 "$DATA"

  mkdir -p "$CONF_DIR"
  if [ -f "$CONF" ]; then
    say "$CONF exists: keeping it and its secrets"
  else
    umask 077
    cat >"$CONF.new" <<CONF
# Shardlyn panel configuration, written by install.sh. Every setting with its default
# and meaning: shardlyn config example. SHARDLYN_* environment variables override it.

listen = "$LISTEN"
data_dir = "$DATA"
# Empty: SQLite at $DATA/shardlyn.db. PostgreSQL: postgres://user:pass@host/db
database_url = ""
# Empty: derived from listen. Set it to the address users and nodes reach, e.g.
# https://panel.example.com
public_url = "$PUBLIC_URL"

# Generated by install.sh. Changing jwt_secret logs everyone out; master_key seals
# stored secrets and cannot change once secrets are stored.
jwt_secret = "$(random_hex)"
master_key = "$(random_hex)"

[tls]
# "auto": plain HTTP on loopback, HTTPS with a self-signed CA (GET /v1/ca) elsewhere.
mode = "auto"
CONF
    umask 022
    chown root:shardlyn "$CONF.new"
    chmod 0640 "$CONF.new"
    mv -f "$CONF.new" "$CONF"
    say "wrote $CONF with generated secrets"
  fi
  # Whatever an earlier run or an operator left, the user must read it and nobody else.
  chown root:shardlyn "$CONF"
  chmod 0640 "$CONF"

  install_unit shardlyn.service
  BIND_DROPIN=$UNIT_DIR/shardlyn.service.d/bind-low-port.conf
  if [ "$PORT" -lt 1024 ] && [ "$PORT" -ne 0 ]; then
    mkdir -p "${BIND_DROPIN%/*}"
    printf '# Written by install.sh: the panel listens on port %s.\n[Service]\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n' \
      "$PORT" >"$BIND_DROPIN"
    say "wrote $BIND_DROPIN (port $PORT needs CAP_NET_BIND_SERVICE)"
  fi

  as_shardlyn "$BIN/shardlyn" migrate --config "$CONF" >&2

  CREDENTIALS=$DATA/initial-admin.txt
  if [ -f "$CREDENTIALS" ]; then
    say "the first admin was created by an earlier run: keeping it"
    NEW_PASSWORD=''
  else
    NEW_PASSWORD=$(random_hex | cut -c1-24)
    SHARDLYN_ADMIN_PASSWORD=$NEW_PASSWORD as_shardlyn "$BIN/shardlyn" admin create \
      --config "$CONF" --email "$ADMIN_EMAIL" --name Admin >&2 ||
      die "creating the first admin failed (see above)"
    (
      umask 077
      printf 'email: %s\npassword: %s\n' "$ADMIN_EMAIL" "$NEW_PASSWORD" >"$CREDENTIALS.new"
    )
    chown shardlyn:shardlyn "$CREDENTIALS.new"
    mv -f "$CREDENTIALS.new" "$CREDENTIALS"
  fi

  start_unit shardlyn.service

  echo "Shardlyn panel installed: listening on $LISTEN (journalctl -u shardlyn)"
  if [ -n "$NEW_PASSWORD" ]; then
    echo "First admin: $ADMIN_EMAIL / $NEW_PASSWORD (also in $CREDENTIALS)"
  else
    echo "First admin: created earlier; its initial credentials are in $CREDENTIALS"
  fi
}

agent() {
  PANEL=''
  TOKEN=${SHARDLYN_AGENT_REGISTRATION_TOKEN-}
  CA_FINGERPRINT=''
  while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir | --panel | --token | --ca-fingerprint)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
      --bin-dir) BIN_DIR=$2 ;;
      --panel) PANEL=$2 ;;
      --token) TOKEN=$2 ;;
      --ca-fingerprint) CA_FINGERPRINT=$2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' for agent (--panel, --token, --ca-fingerprint, --bin-dir)" ;;
    esac
  done

  install_binary shardlyn-agent
  mkdir -p "$AGENT_DATA"
  chmod 0700 "$AGENT_DATA"
  if [ -f "$AGENT_DATA/agent.toml" ]; then
    say "$AGENT_DATA is already registered with a panel: keeping it (delete $AGENT_DATA/agent.toml to register again)"
  else
    [ -n "$PANEL" ] || die "missing --panel URL (the address this node reaches the panel at)"
    [ -n "$TOKEN" ] || die "missing --token: mint a registration token in the panel (Nodes > Add node)"
    set -- --panel "$PANEL" --data-dir "$AGENT_DATA"
    [ -z "$CA_FINGERPRINT" ] || set -- "$@" --ca-fingerprint "$CA_FINGERPRINT"
    # The token goes through the environment, out of the process list.
    SHARDLYN_AGENT_REGISTRATION_TOKEN=$TOKEN "$BIN/shardlyn-agent" register "$@" >&2 ||
      die "registration failed (see above); a used or expired token needs a new one from the panel"
    say "registered with $PANEL"
  fi
  install_unit shardlyn-agent.service
  start_unit shardlyn-agent.service
  echo "Shardlyn agent installed (journalctl -u shardlyn-agent)"
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run this as root"
  [ $# -gt 0 ] || {
    usage >&2
    exit 2
  }
  BIN_DIR=$HERE
  [ -x "$BIN_DIR/shardlyn" ] || [ -x "$BIN_DIR/shardlyn-agent" ] || BIN_DIR=./target/release
  COMMAND=$1
  shift
  case "$COMMAND" in
  panel) panel "$@" ;;
  agent) agent "$@" ;;
  -h | --help) usage ;;
  *) die "unknown command '$COMMAND' (panel or agent)" ;;
  esac
}

main "$@"
