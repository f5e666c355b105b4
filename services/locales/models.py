"""Texts of the admin's model settings page (/admin/models)."""

STRINGS: dict[str, dict[str, str]] = {
    "models.nav": {"zh-CN": "模型", "en": "Models"},
    "models.title": {"zh-CN": "模型设置", "en": "Model settings"},
    "models.intro": {
        "zh-CN": "每个模型的对话默认值（聊天页的“设置”面板留空时使用），以及模型是否支持图片。修改立即生效。",
        "en": "Each model's conversation defaults (used when the chat page's Settings leave a field empty) "
        "and whether the model takes images. Changes apply at once.",
    },
    "models.none": {
        "zh-CN": "还没有模型：先在“渠道”页添加并启用渠道。",
        "en": "No models yet: add and enable a channel on the Channels page first.",
    },
    "models.not_served": {"zh-CN": "（当前没有启用的渠道）", "en": "(no enabled channel now)"},
    "models.vision": {"zh-CN": "支持图片（视觉模型）", "en": "Takes images (vision)"},
    "models.system_prompt": {"zh-CN": "默认系统提示词", "en": "Default system prompt"},
    "models.temperature": {"zh-CN": "默认温度（0–2）", "en": "Default temperature (0–2)"},
    "models.top_p": {"zh-CN": "默认 Top-p（0–1）", "en": "Default top-p (0–1)"},
    "models.max_tokens": {"zh-CN": "默认最大输出 token 数", "en": "Default max tokens"},
    "models.empty_hint": {"zh-CN": "留空：由上游模型决定", "en": "Empty: the upstream model's own"},
    "models.save": {"zh-CN": "保存", "en": "Save"},
    "models.saved": {
        "zh-CN": "{model} 的设置已保存并立即生效",
        "en": "Settings of {model} saved; in effect now",
    },
    "models.bad_number": {
        "zh-CN": "{field} 须在 {low} 到 {high} 之间",
        "en": "{field} must be between {low} and {high}",
    },
}
