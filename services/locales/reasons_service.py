"""Reason codes in words (services/reasons.py): for the person chatting (whether the model is busy,
misconfigured or unreachable) and for the admin (a channel's last error, the dashboard's error table)."""

STRINGS: dict[str, dict[str, str]] = {
    "reasons.kind.overloaded": {
        "zh-CN": "模型当前繁忙（上游过载或限流），请稍后再试。",
        "en": "The model is busy right now (the upstream is overloaded or rate limiting); try again later.",
    },
    "reasons.kind.misconfigured": {
        "zh-CN": "模型的上游配置有误，请联系管理员检查渠道设置。",
        "en": "The model's upstream is set up wrongly; ask the administrator to check the channel.",
    },
    "reasons.kind.unreachable": {
        "zh-CN": "暂时无法连接到模型服务，请稍后再试。",
        "en": "The model service cannot be reached right now; try again later.",
    },
    "reasons.admin.http_401": {
        "zh-CN": "API Key 无效或没有权限",
        "en": "The API Key is invalid or not allowed",
    },
    "reasons.admin.http_4xx": {
        "zh-CN": "上游拒绝了请求（模型或地址不对？）",
        "en": "The upstream refused the request (wrong model or URL?)",
    },
    "reasons.admin.http_429": {
        "zh-CN": "上游限流或过载",
        "en": "The upstream is rate limiting or overloaded",
    },
    "reasons.admin.http_5xx": {"zh-CN": "上游服务器出错", "en": "The upstream server failed"},
    "reasons.admin.tls": {
        "zh-CN": "TLS 证书校验失败（可用 UPSTREAM_CA_BUNDLE 信任私有 CA）",
        "en": "TLS certificate check failed (UPSTREAM_CA_BUNDLE can trust a private CA)",
    },
    "reasons.admin.proxy": {"zh-CN": "代理不可用", "en": "The proxy is unavailable"},
    "reasons.admin.timeout_connect": {
        "zh-CN": "无法连接上游（连接被拒绝、域名无法解析或连接超时）",
        "en": "Cannot connect to the upstream (refused, host name not resolved, or timed out)",
    },
    "reasons.admin.timeout_first_event": {
        "zh-CN": "上游在时限内没有响应",
        "en": "The upstream did not answer in time",
    },
    "reasons.admin.timeout_idle": {
        "zh-CN": "上游响应中途停顿过久",
        "en": "The upstream's answer stalled too long",
    },
    "reasons.admin.bad_stream": {
        "zh-CN": "上游的响应不是 OpenAI 格式、过大或中途断开",
        "en": "The upstream's answer was not in OpenAI format, too large, or cut off",
    },
    "reasons.admin.server_error": {"zh-CN": "网关内部错误", "en": "Internal gateway error"},
    "reasons.admin.all_busy": {
        "zh-CN": "所有渠道都已达到每分钟请求上限或已暂停",
        "en": "Every channel is at its requests-per-minute limit or paused",
    },
    "reasons.admin.key_undecryptable": {
        "zh-CN": "API Key 无法解密（ENCRYPTION_KEY 与保存时不同），请重新填写",
        "en": "The API Key cannot be decrypted (ENCRYPTION_KEY differs from when it was saved); enter it again",
    },
    "reasons.admin.headers_undecryptable": {
        "zh-CN": "自定义请求头无法解密（ENCRYPTION_KEY 与保存时不同），请重新填写",
        "en": "The extra headers cannot be decrypted (ENCRYPTION_KEY differs from when they were saved); enter them again",
    },
    "reasons.admin.proxy_undecryptable": {
        "zh-CN": "代理地址无法解密（ENCRYPTION_KEY 与保存时不同），请重新填写",
        "en": "The proxy cannot be decrypted (ENCRYPTION_KEY differs from when it was saved); enter it again",
    },
}
