#!/bin/sh
# deps.sh - install the Debian packages dengon builds and tests with.
#
# As root: `apt-get update` once, then `apt-get install` of what is missing.
# Otherwise: print the exact command to run, and fail if anything is missing.
# Nothing is done when every package is already installed.
set -eu

# Build: compiler, pkg-config and the libraries of the Makefile's PKGS.
# Test: cmocka (unit tests), sqlite3 (inspecting the queue), python3,
# util-linux (mount, runuser for the disk-full and permission tests),
# clang + libclang-rt for the libFuzzer targets.
# SMTP peers (tests/peers.sh): python3-aiosmtpd, postfix (for smtp-sink; the
# package starts nothing here), openssl (the test CA and certificates).
# IMAP/POP3 peers: a throwaway Dovecot (imapd, pop3d, and lmtpd, through
# which swaks delivers replies; started by the tests, never as a service).
# SMS: gammu (drives the modem emulator as an independent client) and
# python3-gammu (decodes every PDU dengon produces: a decoder we did not write).
PACKAGES="build-essential pkg-config
  libsqlite3-dev libesmtp-dev libetpan-dev libserialport-dev libssl-dev
  libinih-dev libcmocka-dev
  sqlite3 python3 util-linux ca-certificates strace
  clang libclang-rt-14-dev
  python3-aiosmtpd postfix openssl
  dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks
  gammu python3-gammu
  libfreetype-dev libtiff-dev libpng-dev fonts-ipafont-gothic
  libspandsp-dev hylafax-server hylafax-client efax libtiff-tools"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "dengon: these packages are missing:$missing" >&2
	echo "dengon: install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "dengon: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# postfix asks what kind of mail system to set up: "No configuration", so
# that it installs without a question and without a running service.
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
