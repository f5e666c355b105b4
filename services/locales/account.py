"""The account dialogs of the chat page's menu: change password and personal API keys."""

STRINGS: dict[str, dict[str, str]] = {
    "account.change_password": {"zh-CN": "修改密码", "en": "Change password"},
    "account.password_note": {
        "zh-CN": "修改后，其他设备上的登录会退出；API 密钥不受影响。",
        "en": "Other devices will be signed out; API keys keep working.",
    },
    "account.old_password": {"zh-CN": "原密码", "en": "Current password"},
    "account.new_password": {"zh-CN": "新密码（至少 8 位）", "en": "New password (at least 8 characters)"},
    "account.confirm_new_password": {"zh-CN": "确认新密码", "en": "Confirm the new password"},
    "account.passwords_differ": {"zh-CN": "两次输入的新密码不一致", "en": "The new passwords do not match"},
    "account.password_changed": {
        "zh-CN": "密码已修改，其他设备上的登录已退出",
        "en": "Password changed; other devices were signed out",
    },
    "account.cancel": {"zh-CN": "取消", "en": "Cancel"},
    "account.close": {"zh-CN": "关闭", "en": "Close"},
    "account.confirm_change": {"zh-CN": "确认修改", "en": "Change"},
    "account.api_keys": {"zh-CN": "API 密钥", "en": "API keys"},
    "account.keys_intro": {
        "zh-CN": "在聊天应用（OpenAI SDK、Open WebUI、LobeChat、NextChat 等）中填写 Base URL {base_url} "
        "和一个密钥即可使用。密钥与你的账号共用同一个速率限制。",
        "en": "Enter the base URL {base_url} and a key in a chat app (OpenAI SDK, Open WebUI, LobeChat, "
        "NextChat, …). Keys share your account's rate limit.",
    },
    "account.key_name": {"zh-CN": "名称", "en": "Name"},
    "account.key_name_example": {"zh-CN": "例如 NextChat", "en": "for example NextChat"},
    "account.expiry": {"zh-CN": "有效期", "en": "Valid for"},
    "account.never_expires": {"zh-CN": "永不过期", "en": "Never expires"},
    "account.days_7": {"zh-CN": "7 天", "en": "7 days"},
    "account.days_30": {"zh-CN": "30 天", "en": "30 days"},
    "account.days_90": {"zh-CN": "90 天", "en": "90 days"},
    "account.year_1": {"zh-CN": "1 年", "en": "1 year"},
    "account.create_key": {"zh-CN": "创建密钥", "en": "Create key"},
    "account.no_keys": {"zh-CN": "还没有密钥", "en": "No keys yet"},
    "account.created_at": {"zh-CN": "创建：{when}", "en": "Created: {when}"},
    "account.last_used": {"zh-CN": "最近使用：{when}", "en": "Last used: {when}"},
    "account.never": {"zh-CN": "从未", "en": "never"},
    "account.expires_at": {"zh-CN": "过期：{when}", "en": "Expires: {when}"},
    "account.expired_at": {"zh-CN": "过期：{when}（已过期）", "en": "Expires: {when} (expired)"},
    "account.revoke": {"zh-CN": "撤销", "en": "Revoke"},
    "account.revoke_question": {"zh-CN": "撤销密钥“{name}”？", "en": "Revoke the key “{name}”?"},
    "account.revoke_note": {
        "zh-CN": "撤销后使用它的应用会立即无法访问，且无法恢复。",
        "en": "Apps using it lose access at once; this cannot be undone.",
    },
    "account.revoked": {"zh-CN": "密钥已撤销", "en": "Key revoked"},
    "account.key_created": {
        "zh-CN": "密钥“{name}”已创建。它只显示这一次，请现在复制保存。",
        "en": "The key “{name}” was created. It is shown only this once: copy and keep it now.",
    },
    "account.copy_key": {"zh-CN": "复制密钥", "en": "Copy key"},
    "account.copy_base_url": {"zh-CN": "复制 Base URL", "en": "Copy base URL"},
    "account.copied": {"zh-CN": "已复制", "en": "Copied"},
}
