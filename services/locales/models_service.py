"""The rules of a model's settings (services/model_settings.py): messages of a refused change."""

STRINGS: dict[str, dict[str, str]] = {
    "model_settings.number_range": {
        "zh-CN": "{name} 必须是 {low} 到 {high} 之间的数",
        "en": "{name} must be a number from {low} to {high}",
    },
    "model_settings.unknown_fields": {
        "zh-CN": "未知的模型设置项：{names}",
        "en": "Unknown model settings: {names}",
    },
    "model_settings.prompt_not_text": {
        "zh-CN": "system_prompt 必须是文本",
        "en": "system_prompt must be text",
    },
    "model_settings.prompt_too_long": {
        "zh-CN": "system_prompt 最多 {limit} 个字符",
        "en": "system_prompt is at most {limit} characters long",
    },
    "model_settings.max_tokens_range": {
        "zh-CN": "max_tokens 必须是 {low} 到 {high} 之间的整数",
        "en": "max_tokens must be a whole number from {low} to {high}",
    },
    "model_settings.vision_bool": {
        "zh-CN": "vision 必须是 true 或 false",
        "en": "vision must be true or false",
    },
    "model_settings.name_length": {
        "zh-CN": "模型名称必须是 1 到 {limit} 个字符",
        "en": "A model name is 1 to {limit} characters long",
    },
}
