"""dnadesign.notify: tail a USR `.events.log` and post webhooks reliably (see docs/notify.md).

Modules, one job each: profile (schema), secrets_ref (env/file/keyring), urls (https rules),
cursor (checkpoint), tail (line reader), filters, throttle, rollup (job alerts), payloads
(event -> Message), providers (Slack/Discord/generic bodies), delivery (HTTP + retries),
spool (undelivered payloads + drain), watch (the loop), runtime/wizard/doctor (CLI helpers), cli.
Imports only `dnadesign.core`.
"""
