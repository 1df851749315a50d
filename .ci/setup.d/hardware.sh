#!/usr/bin/env bash
# hardware: the PC/SC tests talk to the machine's one pcscd and vsmartcard's two virtual readers
# (`Virtual PCD 00 00` on TCP 35963, `Virtual PCD 00 01` on 35964). There is no systemd here, so
# start pcscd in the foreground, detached, its log in a file, and wait until the readers show.
# Idempotent: a pcscd that already lists the readers is left alone; one that runs without them
# (its virtual reader could not bind its port) is restarted. The tests restart it themselves too.
set -euo pipefail

log="${PCSCD_LOG:-/var/log/pcscd-club.log}"
pidfile=/run/pcscd/pcscd.pid

pid_of_pcscd() {
  local pid
  pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"  # pcscd pads its pid file with a NUL
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

readers_listed() {
  timeout 5 pcsc_scan -r 2>/dev/null | grep -q 'Virtual PCD 00 00'
}

# Waits up to $1 tenths of a second for the readers.
wait_for_readers() {
  for _ in $(seq 1 "$1"); do
    readers_listed && return 0
    sleep 0.1
  done
  return 1
}

if ! [ -e /etc/reader.conf.d/vpcd ]; then
  echo "hardware: vsmartcard-vpcd is not installed (/etc/reader.conf.d/vpcd missing)" >&2
  exit 1
fi

pid="$(pid_of_pcscd)"
if [ -n "$pid" ] && ! wait_for_readers 30; then
  echo "hardware: pcscd $pid runs without the virtual readers; restarting it"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pid=""
fi

if [ -z "$pid" ]; then
  # a stale pid file or socket from a killed daemon would make pcscd refuse to start
  rm -f "$pidfile" /run/pcscd/pcscd.comm
  setsid /usr/sbin/pcscd --foreground >>"$log" 2>&1 </dev/null &
fi

if wait_for_readers 200; then
  echo "hardware: pcscd is up with the virtual readers (log: $log)"
  exit 0
fi
echo "hardware: pcscd did not list 'Virtual PCD 00 00' within 20 s; last log lines:" >&2
tail -n 20 "$log" >&2 || true
exit 1
