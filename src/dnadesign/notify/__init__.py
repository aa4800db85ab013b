"""dnadesign.notify: tail a USR `.events.log` and send alerts reliably (see docs/notify.md).

Modules, one job each: profile (schema), secrets_ref (env/file/keyring), urls (https rules, masking),
cursor (checkpoint), tail (line reader), filters, throttle, rollup (job alerts), payloads
(event -> Message), providers (Slack/Discord/generic/Apprise bodies), delivery (the Sender: retries,
backoff, rate limit), ratelimit (per-destination not-before, persisted), http_transport (webhooks),
apprise_channel (Apprise services), spool (undelivered payloads + drain), watch (the loop),
watch_metrics (--metrics-dir), runtime/wizard/doctor (CLI helpers), cli.
Imports only `dnadesign.core` (and httpx/Apprise inside the transports).
"""
