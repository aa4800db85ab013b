"""Format a `Message` for Slack, Discord or a generic JSON webhook (length limits applied)."""

from __future__ import annotations

from typing import Any

from .payloads import Message

ICONS = {"started": ":arrow_forward:", "running": ":hourglass_flowing_sand:", "success": ":white_check_mark:",
         "failure": ":x:", "info": ":information_source:"}
DISCORD_COLORS = {"started": 0x3498DB, "running": 0x95A5A6, "success": 0x2ECC71, "failure": 0xE74C3C, "info": 0x7F8C8D}
# Polite default spacing between posts (seconds); Slack allows about one message per second per webhook.
MIN_INTERVAL = {"slack": 1.0, "discord": 0.5, "generic": 0.0}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _footer(msg: Message) -> str:
    bits = [b for b in (msg.tool, f"run {msg.run_id}" if msg.run_id else None, f"event {msg.key}") if b]
    return " · ".join(bits)


def slack(msg: Message) -> dict[str, Any]:
    head = f"{ICONS.get(msg.status, '')} *{msg.title}*".strip()
    return {
        "text": _cut(msg.text or msg.title, 3000),  # the notification preview: one full sentence
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{head}\n{msg.text}", 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(_footer(msg), 2000)}]},
        ],
    }


def discord(msg: Message) -> dict[str, Any]:
    return {
        "content": _cut(msg.title, 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [{"title": _cut(msg.title, 256), "description": _cut(msg.text, 4096),
                    "color": DISCORD_COLORS.get(msg.status, 0), "footer": {"text": _cut(_footer(msg), 2048)}}],
    }


def generic(msg: Message) -> dict[str, Any]:
    return {"idempotency_key": msg.key, "status": msg.status, "title": msg.title, "text": _cut(msg.text, 32768),
            "tool": msg.tool, "run_id": msg.run_id, "dataset": msg.dataset, "action": msg.action, "ts": msg.ts,
            "fields": msg.fields}


FORMATTERS = {"slack": slack, "discord": discord, "generic": generic}


def format_message(provider: str, msg: Message) -> dict[str, Any]:
    """The JSON body to POST for `provider`."""
    return FORMATTERS[provider](msg)
