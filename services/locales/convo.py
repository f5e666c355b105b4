"""Texts of the chat page's conversation settings panel and image attachments."""

STRINGS: dict[str, dict[str, str]] = {
    "convo.settings": {"zh-CN": "设置", "en": "Settings"},
    "convo.settings_title": {"zh-CN": "对话设置", "en": "Conversation settings"},
    "convo.settings_hint": {
        "zh-CN": "只对当前对话生效；留空则使用模型默认值。",
        "en": "For this conversation only; leave a field empty for the model's default.",
    },
    "convo.system_prompt": {"zh-CN": "系统提示词", "en": "System prompt"},
    "convo.temperature": {"zh-CN": "温度 (temperature)", "en": "Temperature"},
    "convo.top_p": {"zh-CN": "Top-p", "en": "Top-p"},
    "convo.max_tokens": {"zh-CN": "最大输出 token 数", "en": "Max tokens"},
    "convo.default_value": {"zh-CN": "默认：{value}", "en": "Default: {value}"},
    "convo.upstream_default": {"zh-CN": "默认：由模型决定", "en": "Default: the model's own"},
    "convo.reset": {"zh-CN": "恢复默认", "en": "Reset to defaults"},
    "convo.close": {"zh-CN": "关闭", "en": "Close"},
    "convo.vision_yes": {"zh-CN": "此模型支持图片", "en": "This model takes images"},
    "convo.vision_no": {"zh-CN": "此模型不支持图片", "en": "This model does not take images"},
    "convo.no_vision_history": {
        "zh-CN": "这段对话里有图片，模型 {model} 不支持图片：请换一个支持图片的模型，或开始新对话",
        "en": "This conversation has images and the model {model} does not take them: "
        "choose a model that does, or start a new chat",
    },
    "convo.bad_number": {
        "zh-CN": "{field} 必须在 {low} 到 {high} 之间",
        "en": "{field} must be between {low} and {high}",
    },
    "convo.attach": {"zh-CN": "添加图片", "en": "Attach image"},
    "convo.remove_image": {"zh-CN": "移除图片 {name}", "en": "Remove image {name}"},
    "convo.image_alt": {"zh-CN": "图片 {name}", "en": "Image {name}"},
    "convo.too_many": {
        "zh-CN": "每条消息最多 {max} 张图片，已忽略 {name}",
        "en": "At most {max} images per message; {name} was not added",
    },
    "convo.too_large": {
        "zh-CN": "图片 {name} 超过 {max} MB，未添加",
        "en": "Image {name} is larger than {max} MB and was not added",
    },
    "convo.not_image": {
        "zh-CN": "{name} 不是 PNG、JPEG、WebP 或 GIF 图片，未添加",
        "en": "{name} is not a PNG, JPEG, WebP or GIF image and was not added",
    },
    "convo.no_vision": {
        "zh-CN": "模型 {model} 不支持图片：请移除图片，或换一个支持图片的模型",
        "en": "The model {model} does not take images: remove them, or choose a model that does",
    },
}
