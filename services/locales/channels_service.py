"""The rules of a channel's fields (services/channel_fields.py): messages of a refused base URL, model
list, model mapping, header or proxy, and the notes on how a base URL is called. Each message starts with
the API field it names, the same in both languages."""

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
}
