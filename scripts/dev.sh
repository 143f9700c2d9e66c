#!/usr/bin/env bash
# `make dev`: the gateway in local workerd on 127.0.0.1:8787 with a demo configuration (demo secrets only),
# forwarding to `sekisho receive` on 127.0.0.1:8788, which verifies and prints every event, and sending through a
# local mock of LINE's push API on 127.0.0.1:8789 (scripts/mock-line-api.mjs).
set -euo pipefail
source "$(dirname "$0")/tool-env.sh"
cd "$SEKISHO_ROOT"

GATEWAY_PORT="${GATEWAY_PORT:-8787}"
RECEIVER_PORT="${RECEIVER_PORT:-8788}"
MOCK_LINE_PORT="${MOCK_LINE_PORT:-8789}"
DEMO_LINE_ACCESS_TOKEN="demo-line-channel-access-token-2026"
DEMO_LINE_USER="U0123456789abcdef0123456789abcdef"
# For tests/e2e/dev_walkthrough.test.mjs: another wrangler config (one without the [build] step, the Worker already
# built) and a scratch state folder.
extra_dev_args=()
[ -n "${SEKISHO_DEV_CONFIG:-}" ] && extra_dev_args+=(-c "$SEKISHO_DEV_CONFIG")
[ -n "${SEKISHO_DEV_PERSIST_TO:-}" ] && extra_dev_args+=(--persist-to "$SEKISHO_DEV_PERSIST_TO")
DEMO_SIGNING_SECRET="whsec_ZGVtby1iYWNrZW5kLXNpZ25pbmctc2VjcmV0LTIwMjY="
DEMO_LINE_SECRETS="demo-line-secret-2026,demo-line-secret-2025"
DEMO_SLACK_SECRET="demo-slack-signing-secret-2026"
DEMO_ADMIN_TOKEN="demo-admin-token-2026-0123456789abcdef"
# The registry's sealing key for local development only (base64 of 32 bytes): `openssl rand -base64 32` in production.
DEMO_SEALING_KEY="ZGVtby1zZWFsaW5nLWtleS0yMDI2LTAxMjM0NTY3ODk="

cargo build --quiet --bin sekisho
./target/debug/sekisho receive --port "$RECEIVER_PORT" --secret "$DEMO_SIGNING_SECRET" --reply-text "受け付けました" &
receiver=$!
node scripts/mock-line-api.mjs --port "$MOCK_LINE_PORT" --token "$DEMO_LINE_ACCESS_TOKEN" &
mock_line=$!
trap 'kill $receiver $mock_line 2>/dev/null' EXIT

cat <<MSG

  Sekisho dev: gateway http://127.0.0.1:$GATEWAY_PORT  ->  receiver http://127.0.0.1:$RECEIVER_PORT
  Demo account: LINE 'demo' (secrets $DEMO_LINE_SECRETS, newest first).
  In another terminal, send a signed LINE event and watch it arrive here:

    ./target/debug/sekisho send line http://127.0.0.1:$GATEWAY_PORT/line/demo \\
        --secret demo-line-secret-2026 --body examples/line-message.json

  Talking back: the backend's signed send, pushed to the mock LINE API (it prints the push), then
  message.sent arrives at the receiver:

    ./target/debug/sekisho send-message line http://127.0.0.1:$GATEWAY_PORT/send/line/demo \\
        --secret $DEMO_SIGNING_SECRET --to-user $DEMO_LINE_USER --text "受け付けました"

  Admin console: http://127.0.0.1:$GATEWAY_PORT/admin (token $DEMO_ADMIN_TOKEN)

  A tenant's account created at run time in the registry (no deploy), then its first event:

    curl -s -X PUT http://127.0.0.1:$GATEWAY_PORT/admin/api/accounts/line/tenant-1 \\
        -H 'authorization: Bearer $DEMO_ADMIN_TOKEN' \\
        -d '{"fields":{"CHANNEL_SECRET":"0123456789abcdef0123456789abcdef"}}'
    ./target/debug/sekisho send line http://127.0.0.1:$GATEWAY_PORT/line/tenant-1 \\
        --secret 0123456789abcdef0123456789abcdef --body examples/line-message.json

  Replies: a Slack slash command is answered with the receiver's reply ("受け付けました") in the response:

    ./target/debug/sekisho send slack http://127.0.0.1:$GATEWAY_PORT/slack/demo \\
        --secret $DEMO_SLACK_SECRET --body examples/slack-command.txt

  E-mail: support@example.com belongs to the account 'demo'. Hand it a Japanese message (attachments are
  kept in the local R2 bucket and linked from the event):

    curl -s -X POST 'http://127.0.0.1:$GATEWAY_PORT/cdn-cgi/handler/email?from=ichiro.suzuki@example.co.jp&to=support@example.com' \\
        --data-binary @fixtures/email/iso2022jp.eml

MSG

npx wrangler dev "${extra_dev_args[@]}" --ip 127.0.0.1 --port "$GATEWAY_PORT" --show-interactive-dev-session=false \
  --var "BACKEND_URL:http://127.0.0.1:$RECEIVER_PORT/events" \
  --var "BACKEND_SIGNING_SECRET:$DEMO_SIGNING_SECRET" \
  --var "LINE_DEMO_CHANNEL_SECRET:$DEMO_LINE_SECRETS" \
  --var "LINE_DEMO_CHANNEL_ACCESS_TOKEN:$DEMO_LINE_ACCESS_TOKEN" \
  --var "LINE_API_BASE:http://127.0.0.1:$MOCK_LINE_PORT" \
  --var "SLACK_DEMO_SIGNING_SECRET:$DEMO_SLACK_SECRET" \
  --var "REPLY_URL:http://127.0.0.1:$RECEIVER_PORT/reply" \
  --var "ADMIN_TOKEN:$DEMO_ADMIN_TOKEN" \
  --var "ACCOUNTS_SEALING_KEY:$DEMO_SEALING_KEY" \
  --var "EMAIL_DEMO_ADDRESS:support@example.com" \
  --var "ATTACHMENT_URL_SECRET:demo-attachment-link-secret-2026-0123456789" \
  --var "ATTACHMENT_URL_BASE:http://127.0.0.1:$GATEWAY_PORT"
