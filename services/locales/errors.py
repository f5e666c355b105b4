"""API error messages (services/errors.py, app/api/errors.py) and the words they name."""

STRINGS: dict[str, dict[str, str]] = {
    "errors.images_not_supported": {
        "zh-CN": "该模型不支持图片，请去掉图片或换一个支持图片的模型",
        "en": "This model does not take images: remove them or choose a model that does",
    },
    "errors.bad_request": {"zh-CN": "请求无效", "en": "Invalid request"},
    "errors.invalid_input": {"zh-CN": "输入无效", "en": "Invalid input"},
    "errors.not_found": {"zh-CN": "资源不存在", "en": "Not found"},
    "errors.model_not_found": {
        "zh-CN": "模型不存在或未启用",
        "en": "The model does not exist or is not enabled",
    },
    "errors.payload_too_large": {"zh-CN": "请求体过大", "en": "The request body is too large"},
    "errors.conflict": {"zh-CN": "资源冲突", "en": "Conflict"},
    "errors.authentication_failed": {
        "zh-CN": "未登录或登录已过期",
        "en": "Not signed in, or the sign-in has expired",
    },
    "errors.authentication_required": {
        "zh-CN": "本站已关闭访客使用，请先登录",
        "en": "Guest use is switched off on this site; please sign in",
    },
    "errors.invalid_api_key": {
        "zh-CN": "API 密钥无效、已撤销或已过期",
        "en": "The API key is invalid, revoked or expired",
    },
    "errors.account_disabled_credential": {
        "zh-CN": "账号已被停用，请联系管理员",
        "en": "The account is disabled; please contact the admin",
    },
    "errors.permission_denied": {"zh-CN": "没有权限", "en": "Permission denied"},
    "errors.ip_blocked": {"zh-CN": "您的 IP 已被禁止访问", "en": "Your IP address is blocked"},
    "errors.registration_closed": {
        "zh-CN": "本站暂不开放注册，请联系管理员",
        "en": "Registration is closed on this site; please contact the admin",
    },
    "errors.account_disabled": {
        "zh-CN": "账号已被停用，请联系管理员",
        "en": "The account is disabled; please contact the admin",
    },
    "errors.rate_limited": {
        "zh-CN": "您超过当前使用限制，请稍后再试",
        "en": "You have exceeded the current usage limit; please try again later",
    },
    "errors.upstream_unavailable": {
        "zh-CN": "上游渠道暂时不可用，请稍后再试",
        "en": "The upstream channels are unavailable at the moment; please try again later",
    },
    "errors.limiter_unavailable": {
        "zh-CN": "限流服务暂时不可用，请稍后再试",
        "en": "The rate-limit service is unavailable at the moment; please try again later",
    },
    "errors.state_unavailable": {
        "zh-CN": "服务暂时无法读取最新配置，请稍后再试",
        "en": "The service cannot read its current configuration at the moment; please try again later",
    },
    "errors.audit_unavailable": {
        "zh-CN": "审计日志暂时无法写入，操作未完成，请稍后再试",
        "en": "The audit log cannot be written at the moment, so the action was not done; please try again later",
    },
    "errors.shutting_down": {
        "zh-CN": "服务正在重启，请稍后再试",
        "en": "The service is restarting; please try again later",
    },
    "errors.json_invalid": {"zh-CN": "请求体不是有效的 JSON", "en": "The request body is not valid JSON"},
    "errors.bad_format": {"zh-CN": "请求格式不正确", "en": "The request is malformed"},
    "errors.internal": {
        "zh-CN": "服务器内部错误，请稍后再试",
        "en": "Internal server error; please try again later",
    },
    "errors.http_unauthorized": {
        "zh-CN": "未登录或登录已过期",
        "en": "Not signed in, or the sign-in has expired",
    },
    "errors.http_forbidden": {"zh-CN": "没有权限", "en": "Permission denied"},
    "errors.http_not_found": {"zh-CN": "接口不存在", "en": "No such endpoint"},
    "errors.http_method": {"zh-CN": "不支持该请求方法", "en": "Method not allowed"},
    "errors.http_too_large": {"zh-CN": "请求体过大", "en": "The request body is too large"},
    "errors.http_failed": {"zh-CN": "请求失败", "en": "The request failed"},
    "errors.registered": {"zh-CN": "注册成功", "en": "Registered"},
    "errors.database_unavailable": {"zh-CN": "数据库不可用", "en": "The database is unavailable"},
    "errors.non_finite": {
        "zh-CN": "NaN 与 Infinity 不是 JSON 数值",
        "en": "NaN and Infinity are not JSON numbers",
    },
    "errors.integer_range": {
        "zh-CN": "整数超出 64 位范围",
        "en": "The integer is outside the 64-bit range",
    },
    "errors.bool_value": {"zh-CN": "须为 true 或 false", "en": "must be true or false"},
    "errors.control_characters": {
        "zh-CN": "{what}不能包含控制字符",
        "en": "{what} must not contain control characters",
    },
    "errors.what.email": {"zh-CN": "邮箱", "en": "Email"},
    "errors.email_format": {"zh-CN": "邮箱格式不正确", "en": "This is not a valid email address"},
    "errors.what.password": {"zh-CN": "密码", "en": "Password"},
    "errors.password_short": {
        "zh-CN": "密码至少需要 {count} 位",
        "en": "The password needs at least {count} characters",
    },
    "errors.password_long": {
        "zh-CN": "密码不能超过 {count} 字节",
        "en": "The password must not exceed {count} bytes",
    },
    "errors.email_taken": {"zh-CN": "该邮箱已被注册", "en": "This email is already registered"},
    "errors.account_gone": {
        "zh-CN": "账号不存在或已被删除",
        "en": "The account does not exist or was deleted",
    },
    "errors.password_changed": {
        "zh-CN": "密码已更改，请重新登录",
        "en": "The password was changed; please sign in again",
    },
    "errors.admin_gone": {"zh-CN": "管理员账号不存在", "en": "The admin account does not exist"},
    "errors.login_failed": {"zh-CN": "邮箱或密码错误", "en": "Wrong email or password"},
    "errors.admin_login_failed": {"zh-CN": "用户名或密码错误", "en": "Wrong username or password"},
    "errors.wrong_old_password": {
        "zh-CN": "old_password：原密码不正确",
        "en": "old_password: the current password is wrong",
    },
    "errors.what.username": {"zh-CN": "用户名", "en": "Username"},
    "errors.what.old_password": {"zh-CN": "原密码", "en": "Current password"},
    "errors.login_throttled": {
        "zh-CN": "登录失败次数过多，请稍后再试",
        "en": "Too many failed sign-ins; please try again later",
    },
    "errors.register_throttled": {
        "zh-CN": "注册过于频繁，请稍后再试",
        "en": "Too many registrations; please try again later",
    },
    "errors.bad_key_throttled": {
        "zh-CN": "无效的 API 密钥过多，请稍后再试",
        "en": "Too many invalid API keys; please try again later",
    },
    "errors.session_ended": {
        "zh-CN": "登录已失效（密码已更改或已在其他地方退出），请重新登录",
        "en": "The session has ended (password changed or signed out elsewhere); please sign in again",
    },
    "errors.token_invalid": {
        "zh-CN": "登录凭证无效或已过期",
        "en": "The sign-in token is invalid or expired",
    },
    "errors.token_kind": {"zh-CN": "登录凭证类型不正确", "en": "The sign-in token is of the wrong kind"},
    "errors.token_revoked": {
        "zh-CN": "登录凭证已失效，请重新登录",
        "en": "The sign-in token is no longer valid; please sign in again",
    },
    "errors.what.key_name": {"zh-CN": "name：名称", "en": "name: the name"},
    "errors.key_name_empty": {"zh-CN": "name：名称不能为空", "en": "name: the name must not be empty"},
    "errors.key_name_long": {
        "zh-CN": "name：名称不能超过 {count} 个字符",
        "en": "name: the name must not exceed {count} characters",
    },
    "errors.key_expiry_past": {
        "zh-CN": "expires_at：过期时间必须晚于现在",
        "en": "expires_at: the expiry must be in the future",
    },
    "errors.too_many_keys": {
        "zh-CN": "最多只能有 {count} 个有效的 API 密钥，请先撤销不用的密钥",
        "en": "At most {count} active API keys; please revoke unused keys first",
    },
    "errors.key_not_found": {"zh-CN": "API 密钥不存在", "en": "The API key does not exist"},
    "errors.admin_required": {"zh-CN": "需要管理员登录", "en": "Admin sign-in required"},
    "errors.admin_only": {"zh-CN": "需要管理员权限", "en": "Admin permission required"},
    "errors.user_not_found": {
        "zh-CN": "用户不存在或已被删除",
        "en": "The user does not exist or was deleted",
    },
    "errors.sort_one_of": {"zh-CN": "sort 只能是 {choices}", "en": "sort must be one of {choices}"},
    "errors.q_control": {"zh-CN": "q 不能包含控制字符", "en": "q must not contain control characters"},
    "errors.q_long": {"zh-CN": "q 不能超过 {count} 个字符", "en": "q must not exceed {count} characters"},
    "errors.rpm_limit_range": {
        "zh-CN": "rpm_limit 必须是 {low} 到 {high} 之间的整数（留空表示使用全局设置）",
        "en": "rpm_limit must be a whole number from {low} to {high} (empty: the global setting)",
    },
    "errors.page_range": {"zh-CN": "page 须在 1 到 {high} 之间", "en": "page must be from 1 to {high}"},
    "errors.page_size_range": {
        "zh-CN": "page_size 须在 1 到 {high} 之间",
        "en": "page_size must be from 1 to {high}",
    },
    "errors.channel_q": {
        "zh-CN": "q 最多 {count} 个字符，且不能包含控制字符",
        "en": "q: at most {count} characters, no control characters",
    },
    "errors.status_one_of": {"zh-CN": "status 只能是 {choices}", "en": "status must be one of {choices}"},
    "errors.sort_one_of_desc": {
        "zh-CN": "sort 只能是 {choices}（前加 - 为降序）",
        "en": "sort must be one of {choices} (a leading - sorts descending)",
    },
    "errors.channel_not_found": {"zh-CN": "渠道不存在", "en": "The channel does not exist"},
    "errors.api_key_empty": {"zh-CN": "API Key 不能为空", "en": "The API key must not be empty"},
    "errors.api_key_ascii": {
        "zh-CN": "API Key 只能包含可见的 ASCII 字符",
        "en": "The API key may only hold visible ASCII characters",
    },
    "errors.empty": {"zh-CN": "{what}不能为空", "en": "{what} must not be empty"},
    "errors.what.channel_name": {"zh-CN": "渠道名称", "en": "The channel name"},
    "errors.header_unsaved": {
        "zh-CN": "headers：{name} 没有保存过的值，请填写",
        "en": "headers: {name} has no saved value; please fill it in",
    },
    "errors.ip_empty": {"zh-CN": "请输入 IP 地址或 CIDR 网段", "en": "Enter an IP address or a CIDR range"},
    "errors.cidr_invalid": {
        "zh-CN": "不是有效的 CIDR 网段：{value}",
        "en": "Not a valid CIDR range: {value}",
    },
    "errors.cidr_host_bits": {
        "zh-CN": "{value} 的主机位不为零：是指 {network} 吗？",
        "en": "{value} has host bits set: did you mean {network}?",
    },
    "errors.cidr_everyone": {
        "zh-CN": "{network} 会禁用所有 IPv{version} 用户；确认请同时提交 confirm_all: true",
        "en": "{network} would block every IPv{version} user; to confirm, also send confirm_all: true",
    },
    "errors.ip_invalid": {"zh-CN": "不是有效的 IP 地址：{value}", "en": "Not a valid IP address: {value}"},
    "errors.reason_control": {
        "zh-CN": "原因不能包含控制字符",
        "en": "The reason must not contain control characters",
    },
    "errors.ip_rule_exists": {"zh-CN": "{rule} 已在禁用列表中", "en": "{rule} is already on the block list"},
    "errors.ip_rule_not_found": {"zh-CN": "禁用规则不存在", "en": "The block rule does not exist"},
    "errors.setting_bool": {"zh-CN": "{key} 必须是 true 或 false", "en": "{key} must be true or false"},
    "errors.setting_range": {
        "zh-CN": "{key} 必须是 {low} 到 {high} 之间的整数",
        "en": "{key} must be a whole number from {low} to {high}",
    },
    "errors.setting_unknown": {"zh-CN": "未知的设置项：{keys}", "en": "Unknown settings: {keys}"},
    "errors.time_format": {
        "zh-CN": "时间格式不正确：{value}（例如 2026-11-24 或 2026-11-24T08:00）",
        "en": "Not a valid time: {value} (for example 2026-11-24 or 2026-11-24T08:00)",
    },
    "errors.time_years": {
        "zh-CN": "时间须在 {low} 到 {high} 年之间",
        "en": "The time must be within the years {low} to {high}",
    },
    "errors.start_before_end": {
        "zh-CN": "开始时间必须早于结束时间",
        "en": "The start must be before the end",
    },
    "errors.log_status_one_of": {
        "zh-CN": "状态只能是 {choices}",
        "en": "The status must be one of {choices}",
    },
    "errors.what.model": {"zh-CN": "模型", "en": "The model"},
    "errors.channel_id": {
        "zh-CN": "channel 须是渠道 id（正整数）",
        "en": "channel must be a channel id (a positive whole number)",
    },
    "errors.too_long": {
        "zh-CN": "{what}太长（最多 {count} 个字符）",
        "en": "{what} is too long (at most {count} characters)",
    },
    "errors.what.user": {"zh-CN": "用户", "en": "The user"},
    "errors.user_id_range": {
        "zh-CN": "用户 id 须在 1 到 {high} 之间",
        "en": "The user id must be from 1 to {high}",
    },
    "errors.end_after_start": {
        "zh-CN": "end：开始时间必须早于结束时间",
        "en": "end: the start must be before the end",
    },
    "errors.audit_admin": {
        "zh-CN": "admin：最多 {count} 个字符，且不能包含控制字符",
        "en": "admin: at most {count} characters, no control characters",
    },
    "errors.audit_action": {
        "zh-CN": "action：应为操作名（如 channel.update）或操作类别（如 channel）",
        "en": "action: an action name (such as channel.update) or a category (such as channel)",
    },
    "errors.page_range_colon": {
        "zh-CN": "page：须在 1 到 {high} 之间",
        "en": "page: must be from 1 to {high}",
    },
    "errors.date_invalid": {
        "zh-CN": "{name}：不是有效日期（YYYY-MM-DD）：{value}",
        "en": "{name}: not a valid date (YYYY-MM-DD): {value}",
    },
    "errors.end_date_before_start": {
        "zh-CN": "end：结束日期不能早于开始日期",
        "en": "end: the end date must not be before the start date",
    },
    "errors.date_range_days": {
        "zh-CN": "end：日期范围最多 {count} 天",
        "en": "end: the date range is at most {count} days",
    },
    "errors.body_too_large": {
        "zh-CN": "请求体过大（上限 {limit}）",
        "en": "The request body is too large (limit {limit})",
    },
    "errors.body_too_large_bytes": {
        "zh-CN": "请求体过大（上限 {count} 字节）",
        "en": "The request body is too large (limit {count} bytes)",
    },
    "errors.all_busy": {
        "zh-CN": "模型当前繁忙：它的所有渠道都已达到每分钟请求上限或已暂停，请稍后再试",
        "en": "The model is busy: all its channels reached their per-minute limit or are paused; please try again later",
    },
    "errors.page_blocked": {"zh-CN": "访问受限", "en": "Access restricted"},
    "errors.page_unavailable": {"zh-CN": "暂时无法访问", "en": "Unavailable at the moment"},
    "errors.hint_blocked": {
        "zh-CN": "如有疑问，请联系管理员。",
        "en": "If you have questions, please contact the admin.",
    },
    "errors.hint_unavailable": {"zh-CN": "请稍后刷新页面。", "en": "Please reload the page later."},
}
