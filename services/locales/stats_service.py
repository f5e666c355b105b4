"""Words the dashboard figures give (services/stats.py): the name of a channel deleted since, and of the
calls that reached no channel."""

STRINGS: dict[str, dict[str, str]] = {
    "stats.channel_deleted": {"zh-CN": "#{id}（已删除）", "en": "#{id} (deleted)"},
    "stats.no_channel": {"zh-CN": "（无渠道）", "en": "(no channel)"},
}
