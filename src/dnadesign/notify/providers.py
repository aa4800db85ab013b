"""Format a `Message` for Slack, Discord, a generic JSON webhook or an Apprise channel (length limits applied).

`generic` has two shapes: `native` (this tool's fields) and `incumbent`, the payload of the older
dnadesign notify (`status, tool, run_id, timestamp, message, host, meta{usr_*}`) so receivers built
for it keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .payloads import Message

PROVIDERS = ("slack", "discord", "generic", "apprise")
PAYLOAD_SHAPES = ("native", "incumbent")
ICONS = {"started": ":arrow_forward:", "running": ":hourglass_flowing_sand:", "success": ":white_check_mark:",
         "failure": ":x:", "info": ":information_source:"}
DISCORD_COLORS = {"started": 0x3498DB, "running": 0x95A5A6, "success": 0x2ECC71, "failure": 0xE74C3C, "info": 0x7F8C8D}
# Polite default spacing between posts (seconds); Slack allows about one message per second per webhook.
# Apprise services keep their own per-service spacing unless `delivery.min_interval` is set.
MIN_INTERVAL = {"slack": 1.0, "discord": 0.5, "generic": 0.0, "apprise": 0.0}
INCUMBENT_STATUS = {"started": "started", "running": "running", "success": "success", "failure": "failure", "info": "running"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body_lines(msg: Message, bold: Callable[[str], str]) -> str:
    lines = [msg.text]
    if msg.next_step:
        lines.append(f"{bold('Next:')} {msg.next_step}")
    return "\n".join(lines)


def slack(msg: Message) -> dict[str, Any]:
    """Slack incoming-webhook body: a section (what, why, next) and a context line (who, where, short id)."""
    head = f"{ICONS.get(msg.status, '')} *{msg.title}*".strip()
    return {
        "text": _cut(msg.text.split("\n", 1)[0] or msg.title, 3000),  # the notification preview: one full sentence
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{head}\n{_body_lines(msg, lambda s: f'*{s}*')}", 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(msg.footer(), 2000)}]},
        ],
    }


def discord(msg: Message) -> dict[str, Any]:
    """Discord webhook body: one embed, mentions disabled."""
    return {
        "content": _cut(msg.title, 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [{"title": _cut(msg.title, 256), "description": _cut(_body_lines(msg, lambda s: f"**{s}**"), 4096),
                    "color": DISCORD_COLORS.get(msg.status, 0), "footer": {"text": _cut(msg.footer(), 2048)}}],
    }


def generic(msg: Message) -> dict[str, Any]:
    """This tool's generic JSON body."""
    return {"idempotency_key": msg.key, "status": msg.status, "title": msg.title, "text": _cut(msg.text, 32768),
            "next_step": msg.next_step, "tool": msg.tool, "run_id": msg.run_id, "dataset": msg.dataset,
            "action": msg.action, "ts": msg.ts, "host": msg.host, "job": msg.job, "fields": msg.fields}


def generic_incumbent(msg: Message) -> dict[str, Any]:
    """The incumbent dnadesign notify's generic payload, for receivers built for it."""
    meta = {"usr_event_version": msg.event_meta.get("event_version"), "usr_action": msg.action,
            "usr_dataset_name": msg.dataset, "usr_fingerprint": msg.event_meta.get("fingerprint") or {},
            "usr_registry_hash": None, "usr_timestamp": msg.ts}
    text = msg.text + (f"\nNext: {msg.next_step}" if msg.next_step else "")
    body: dict[str, Any] = {"status": INCUMBENT_STATUS.get(msg.status, "running"), "tool": msg.tool or "notify",
                            "run_id": msg.run_id or "", "timestamp": msg.ts, "message": _cut(text, 32768), "meta": meta}
    if msg.host:
        body["host"] = msg.host
    return body


def apprise(msg: Message) -> dict[str, Any]:
    """Plain text for any Apprise service (e-mail subject/body, Teams card, ntfy, Mattermost, Telegram...)."""
    lines = [msg.text]
    where = msg.where()
    if where:
        lines.append(f"Where: {where}")
    if msg.next_step:
        lines.append(f"Next: {msg.next_step}")
    lines.append(msg.footer())
    return {"title": _cut(msg.title, 250), "body": _cut("\n".join(lines), 32768), "type": msg.status}


FORMATTERS: dict[str, Callable[[Message], dict[str, Any]]] = {"slack": slack, "discord": discord, "generic": generic,
                                                             "apprise": apprise}


def format_message(provider: str, msg: Message, shape: str = "native") -> dict[str, Any]:
    """The body to deliver for `provider` (`shape` applies to `generic` only)."""
    if provider == "generic" and shape == "incumbent":
        return generic_incumbent(msg)
    return FORMATTERS[provider](msg)
