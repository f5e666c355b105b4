"""Texts shared by every page: the header's switches."""

STRINGS: dict[str, dict[str, str]] = {
    "common.dark_mode": {"zh-CN": "深色模式", "en": "Dark mode"},
    "common.dark_mode_tip": {"zh-CN": "切换深色模式", "en": "Switch dark mode"},
    "common.language": {"zh-CN": "语言", "en": "Language"},
}
