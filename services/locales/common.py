"""Texts shared by every page: the header's switches."""

STRINGS: dict[str, dict[str, str]] = {
    "common.dark_mode": {"zh-CN": "深色模式", "en": "Dark mode"},
    "common.dark_mode_tip": {"zh-CN": "切换深色模式", "en": "Switch dark mode"},
    "common.language": {"zh-CN": "语言", "en": "Language"},
    "common.sign_in": {"zh-CN": "登录", "en": "Sign in"},
    "common.dialog.rate_limited": {"zh-CN": "请求过于频繁", "en": "Too many requests"},
    "common.dialog.sign_in_first": {"zh-CN": "请先登录", "en": "Please sign in first"},
    "common.dialog.upstream": {"zh-CN": "上游服务暂不可用", "en": "Upstream service unavailable"},
    "common.dialog.blocked": {"zh-CN": "访问受限", "en": "Access restricted"},
    "common.dialog.model": {"zh-CN": "模型不可用", "en": "Model unavailable"},
    "common.dialog.restarting": {"zh-CN": "服务正在重启", "en": "The service is restarting"},
    "common.dialog.error": {"zh-CN": "出错了", "en": "Something went wrong"},
    "common.dialog.ask_admin": {
        "zh-CN": "如有疑问，请联系管理员。",
        "en": "If you have questions, please contact the admin.",
    },
    "common.dialog.retry_in": {"zh-CN": "{seconds} 秒后可以重试", "en": "You can retry in {seconds} s"},
    "common.dialog.retry_now": {"zh-CN": "现在可以重试了", "en": "You can retry now"},
    "common.dialog.ok": {"zh-CN": "知道了", "en": "OK"},
}
