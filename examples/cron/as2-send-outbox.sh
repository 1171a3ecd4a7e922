#!/bin/sh
# Sends every file of an outbox folder to one partner, as one job; moves each file to the
# archive once its MDN confirmed it; raises an alert when the job did not fully succeed.
#
# crontab -e:
#   */5 * * * * AS2_CONFIG=/etc/as2/as2rc.json /opt/as2/as2-send-outbox.sh acme /srv/edi/out/acme >>/var/log/as2-send.log 2>&1
#
# Exit codes are as2's (0 all confirmed, 1 failed, 2 usage/config, 3 partial, 130/143
# interrupted), or 0 when the outbox was empty. ALERT is the command that gets the alert text on
# its standard input (default: mail to edi-ops).
set -u
PARTNER=${1:?usage: as2-send-outbox.sh <partner> <outbox> [pattern]}
OUTBOX=${2:?usage: as2-send-outbox.sh <partner> <outbox> [pattern]}
PATTERN=${3:-*}
ARCHIVE=${ARCHIVE:-$OUTBOX/sent}
ALERT=${ALERT:-mail -s "as2: sending to $PARTNER failed" edi-ops@example.com}
AS2=${AS2:-as2}

# Nothing to send is not an error for a cron job (as2 send would say "no file matches": exit 2).
if [ -z "$(find "$OUTBOX" -maxdepth 1 -type f -name "$PATTERN" ! -name '.*' -print -quit)" ]; then
  exit 0
fi

result=$(mktemp)
trap 'rm -f "$result"' EXIT
$AS2 send ${AS2_CONFIG:+--config "$AS2_CONFIG"} --partner "$PARTNER" --dir "$OUTBOX" --pattern "$PATTERN" \
  --archive-dir "$ARCHIVE" --quiet --json >"$result"
code=$?
if [ "$code" -ne 0 ]; then
  # The job record (stdout, --json) names each file's state and error; as2 status <runId> shows it later.
  run_id=$(sed -n 's/^  "runId": "\(.*\)",$/\1/p' "$result")
  {
    echo "as2 send to $PARTNER exited $code (job ${run_id:-none})."
    echo "Files that did not go, and why:"
    grep -E '"(name|status|message)":' "$result" | sed 's/^ *//'
    echo "Retry the failed files only: as2 send --restart ${run_id:-<runId>}"
  } | sh -c "$ALERT"
fi
exit "$code"
