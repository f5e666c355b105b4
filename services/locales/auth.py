"""The sign-in and registration pages (/login, /register) and the admin sign-in."""

STRINGS: dict[str, dict[str, str]] = {
    "auth.email": {"zh-CN": "邮箱", "en": "Email"},
    "auth.password": {"zh-CN": "密码", "en": "Password"},
    "auth.confirm_password": {"zh-CN": "确认密码", "en": "Confirm password"},
    "auth.passwords_differ": {"zh-CN": "两次输入的密码不一致", "en": "The passwords do not match"},
    "auth.sign_in": {"zh-CN": "登录", "en": "Sign in"},
    "auth.register": {"zh-CN": "注册", "en": "Register"},
    "auth.login_title": {"zh-CN": "登录 · pyaichat", "en": "Sign in · pyaichat"},
    "auth.register_title": {"zh-CN": "注册 · pyaichat", "en": "Register · pyaichat"},
    "auth.login_subtitle": {
        "zh-CN": "登录后可享受更高的使用额度",
        "en": "Signed-in users get a higher usage limit",
    },
    "auth.no_account": {"zh-CN": "还没有账号？", "en": "No account yet?"},
    "auth.have_account": {"zh-CN": "已有账号？", "en": "Already have an account?"},
    "auth.register_closed": {"zh-CN": "本站暂不开放注册", "en": "Registration is closed on this site"},
    "auth.register_subtitle": {
        "zh-CN": "只需邮箱和密码，无需验证",
        "en": "Just an email and a password, no verification",
    },
    "auth.registered": {"zh-CN": "注册成功", "en": "Registered"},
    "auth.admin_title": {"zh-CN": "管理员登录 · pyaichat", "en": "Admin sign-in · pyaichat"},
    "auth.admin_sign_in": {"zh-CN": "管理员登录", "en": "Admin sign-in"},
    "auth.back_to_chat": {"zh-CN": "← 返回聊天", "en": "← Back to chat"},
    "auth.username": {"zh-CN": "用户名", "en": "Username"},
    "auth.need_both": {"zh-CN": "请输入用户名和密码", "en": "Enter the username and the password"},
}
