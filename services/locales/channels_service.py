"""The rules of a channel's fields (services/channel_fields.py): messages of a refused base URL, model
list, model mapping, header or proxy, and the notes on how a base URL is called. Each message starts with
the API field it names, the same in both languages. Then what the admin's channel test found
(services/channel_test.py)."""

STRINGS: dict[str, dict[str, str]] = {
    "channel_fields.url_format": {"zh-CN": "{field}：格式不正确", "en": "{field}: not a valid URL"},
    "channel_fields.base_url_scheme": {
        "zh-CN": "base_url：必须以 http:// 或 https:// 开头，例如 https://api.openai.com/v1",
        "en": "base_url: must start with http:// or https://, e.g. https://api.openai.com/v1",
    },
    "channel_fields.base_url_credentials": {
        "zh-CN": "base_url：不能包含用户名或密码，请把密钥填在 API Key 中",
        "en": "base_url: must not hold a user name or password; put the key in API Key",
    },
    "channel_fields.base_url_fragment": {
        "zh-CN": "base_url：不能包含 # 片段",
        "en": "base_url: must not hold a # fragment",
    },
    "channel_fields.note.completions_cut": {
        "zh-CN": "末尾的 /chat/completions 已去掉：调用时会自动加上",
        "en": "The trailing /chat/completions was taken off: every call adds it",
    },
    "channel_fields.note.v1_added": {
        "zh-CN": "没有路径，按 OpenAI 兼容接口的惯例补上 /v1",
        "en": "No path given: /v1 is added, as OpenAI-compatible servers expect",
    },
    "channel_fields.note.query_kept": {
        "zh-CN": "查询参数（如 api-version）会附在每次调用的地址后",
        "en": "The query string (such as api-version) is added to every call's URL",
    },
    "channel_fields.model_empty": {
        "zh-CN": "{field}：模型名不能为空",
        "en": "{field}: a model name must not be empty",
    },
    "channel_fields.model_too_long": {
        "zh-CN": "{field}：模型名最长 {limit} 个字符",
        "en": "{field}: a model name is at most {limit} characters long",
    },
    "channel_fields.model_control": {
        "zh-CN": "{field}：模型名不能包含控制字符",
        "en": "{field}: a model name must not contain control characters",
    },
    "channel_fields.models_none": {
        "zh-CN": "models：至少填写一个模型",
        "en": "models: enter at least one model",
    },
    "channel_fields.models_too_many": {
        "zh-CN": "models：最多 {limit} 个模型",
        "en": "models: at most {limit} models",
    },
    "channel_fields.models_duplicate": {
        "zh-CN": "models：模型重复：{names}",
        "en": "models: listed more than once: {names}",
    },
    "channel_fields.model_id_not_in_models": {
        "zh-CN": "model_id：不在 models 中（model_id 是只有一个模型时的简写）",
        "en": "model_id: not in models (model_id is the shorthand for a single model)",
    },
    "channel_fields.map_not_in_models": {
        "zh-CN": "model_map：{name} 不在 models 中",
        "en": "model_map: {name} is not in models",
    },
    "channel_fields.map_empty_target": {
        "zh-CN": "model_map：{name} 映射到的上游模型 ID 不能为空",
        "en": "model_map: the upstream model id {name} maps to must not be empty",
    },
    "channel_fields.headers_too_many": {
        "zh-CN": "headers：最多 {limit} 个",
        "en": "headers: at most {limit}",
    },
    "channel_fields.header_bad_name": {
        "zh-CN": "headers：名称 {name} 不是合法的 HTTP 头名称",
        "en": "headers: {name} is not a valid HTTP header name",
    },
    "channel_fields.header_reserved": {
        "zh-CN": "headers：{name} 由网关设置，不能覆盖",
        "en": "headers: {name} is set by the gateway and cannot be replaced",
    },
    "channel_fields.header_value_type": {
        "zh-CN": "headers：{name} 的值必须是字符串",
        "en": "headers: the value of {name} must be a string",
    },
    "channel_fields.header_value_control": {
        "zh-CN": "headers：{name} 的值不能包含换行或控制字符",
        "en": "headers: the value of {name} must not contain line breaks or control characters",
    },
    "channel_fields.header_value_long": {
        "zh-CN": "headers：{name} 的值太长",
        "en": "headers: the value of {name} is too long",
    },
    "channel_fields.header_duplicate": {
        "zh-CN": "headers：{name} 重复",
        "en": "headers: {name} is given more than once",
    },
    "channel_fields.proxy_scheme": {
        "zh-CN": "proxy：只支持 http://、https://、socks5://、socks5h:// 代理",
        "en": "proxy: only http://, https://, socks5:// and socks5h:// proxies are supported",
    },
    "channel_fields.proxy_shape": {
        "zh-CN": "proxy：只能是 scheme://[user:password@]host:port",
        "en": "proxy: must be only scheme://[user:password@]host:port",
    },
    "channel_test.tls": {
        "zh-CN": "TLS 证书校验失败（tls）：上游证书不受信任，可用 UPSTREAM_CA_BUNDLE 信任私有 CA",
        "en": "TLS certificate check failed (tls): the upstream's certificate is not trusted; UPSTREAM_CA_BUNDLE can trust a private CA",
    },
    "channel_test.proxy": {
        "zh-CN": "代理不可用（proxy）：无法通过代理连接上游",
        "en": "Proxy unavailable (proxy): the upstream cannot be reached through the proxy",
    },
    "channel_test.connect_timeout": {
        "zh-CN": "连接超时（timeout_connect）",
        "en": "Connection timed out (timeout_connect)",
    },
    "channel_test.connect_refused": {
        "zh-CN": "无法连接上游（timeout_connect）：连接被拒绝或域名无法解析",
        "en": "Cannot connect to the upstream (timeout_connect): connection refused or host name not resolved",
    },
    "channel_test.unreachable": {"zh-CN": "无法连接（{reason}）", "en": "Cannot connect ({reason})"},
    "channel_test.http": {"zh-CN": "HTTP {status}", "en": "HTTP {status}"},
    "channel_test.http_detail": {"zh-CN": "HTTP {status}: {detail}", "en": "HTTP {status}: {detail}"},
    "channel_test.timeout": {
        "zh-CN": "超时（{seconds} 秒内没有响应）",
        "en": "Timed out (no answer within {seconds} s)",
    },
    "channel_test.too_large": {
        "zh-CN": "响应超过 {limit} 字节",
        "en": "The answer is larger than {limit} bytes",
    },
    "channel_test.not_openai": {
        "zh-CN": "响应不是 OpenAI chat.completion 格式",
        "en": "The answer is not in the OpenAI chat.completion format",
    },
    "channel_test.no_events": {
        "zh-CN": "没有收到任何 SSE 事件（上游可能不支持 stream: true）",
        "en": "No SSE event came (the upstream may not support stream: true)",
    },
    "channel_test.first_event_timeout": {
        "zh-CN": "超时（{seconds} 秒内没有收到第一个事件）",
        "en": "Timed out (no first event within {seconds} s)",
    },
    "channel_test.bad_stream": {
        "zh-CN": "流格式错误（bad_stream）：{detail}",
        "en": "Malformed stream (bad_stream): {detail}",
    },
    "channel_test.key_masked_unreadable": {"zh-CN": "（无法解密）", "en": "(cannot be decrypted)"},
    "channel_test.key_undecryptable": {
        "zh-CN": "API Key 无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写 API Key",
        "en": "The API Key cannot be decrypted: ENCRYPTION_KEY differs from when it was saved; enter the API Key again",
    },
    "channel_test.headers_undecryptable": {
        "zh-CN": "自定义请求头无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写",
        "en": "The extra headers cannot be decrypted: ENCRYPTION_KEY differs from when they were saved; enter them again",
    },
    "channel_test.proxy_undecryptable": {
        "zh-CN": "代理地址无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写代理",
        "en": "The proxy cannot be decrypted: ENCRYPTION_KEY differs from when it was saved; enter the proxy again",
    },
    "channel_test.plain_failed": {
        "zh-CN": "非流式调用失败：{error}",
        "en": "The plain call failed: {error}",
    },
    "channel_test.stream_failed": {
        "zh-CN": "流式调用失败：{error}",
        "en": "The streamed call failed: {error}",
    },
}
