"""Texts of the chat page (``/``)."""

STRINGS: dict[str, dict[str, str]] = {
    # header and composer
    "chat.new_chat": {"zh-CN": "新对话", "en": "New chat"},
    "chat.export": {"zh-CN": "导出", "en": "Export"},
    "chat.export_tip": {"zh-CN": "导出为 Markdown 文件", "en": "Export as a Markdown file"},
    "chat.send": {"zh-CN": "发送", "en": "Send"},
    "chat.stop": {"zh-CN": "停止", "en": "Stop"},
    "chat.sign_in": {"zh-CN": "登录", "en": "Sign in"},
    "chat.account": {"zh-CN": "账户", "en": "Account"},
    "chat.model": {"zh-CN": "模型", "en": "Model"},
    "chat.search_model": {"zh-CN": "搜索模型", "en": "Search models"},
    "chat.placeholder": {
        "zh-CN": "输入消息，Enter 发送，Shift+Enter 换行",
        "en": "Message, Enter to send, Shift+Enter for a new line",
    },
    "chat.message_box": {"zh-CN": "消息", "en": "Message"},
    "chat.to_console": {"zh-CN": "管理后台", "en": "Console"},
    "chat.api_keys": {"zh-CN": "API 密钥", "en": "API keys"},
    "chat.change_password": {"zh-CN": "修改密码", "en": "Change password"},
    "chat.sign_out": {"zh-CN": "退出登录", "en": "Sign out"},
    "chat.signed_in": {"zh-CN": "已登录：{email}", "en": "Signed in as {email}"},
    "chat.signed_out": {
        "zh-CN": "已退出登录，对话仍保留在页面上",
        "en": "Signed out; the conversation stays on this page",
    },
    # empty states
    "chat.greeting": {"zh-CN": "有什么可以帮你？", "en": "How can I help?"},
    "chat.suggestion_1": {
        "zh-CN": "用三句话解释什么是大语言模型",
        "en": "Explain large language models in three sentences",
    },
    "chat.suggestion_2": {"zh-CN": "帮我写一个 Python 快速排序", "en": "Write a quicksort in Python"},
    "chat.suggestion_3": {"zh-CN": "给我一个周末出游计划", "en": "Plan a weekend trip for me"},
    "chat.no_models": {"zh-CN": "管理员还没有配置可用的模型", "en": "No model has been set up yet"},
    "chat.sign_in_first": {"zh-CN": "请先登录", "en": "Please sign in"},
    "chat.guests_closed": {
        "zh-CN": "本站已关闭访客使用，登录后即可开始对话。",
        "en": "Guests cannot chat here: sign in to start a conversation.",
    },
    # message actions
    "chat.copy": {"zh-CN": "复制", "en": "Copy"},
    "chat.copied": {"zh-CN": "已复制", "en": "Copied"},
    "chat.regenerate": {"zh-CN": "重新生成", "en": "Regenerate"},
    "chat.edit": {"zh-CN": "编辑", "en": "Edit"},
    "chat.delete": {"zh-CN": "删除", "en": "Delete"},
    "chat.previous_answer": {"zh-CN": "上一个回答", "en": "Previous answer"},
    "chat.next_answer": {"zh-CN": "下一个回答", "en": "Next answer"},
    "chat.save_and_send": {"zh-CN": "保存并发送", "en": "Save and send"},
    "chat.cancel": {"zh-CN": "取消", "en": "Cancel"},
    "chat.edit_box": {"zh-CN": "编辑消息", "en": "Edit the message"},
    "chat.retry": {"zh-CN": "重试", "en": "Retry"},
    # notes on answers
    "chat.stopped": {"zh-CN": "已停止生成", "en": "Stopped"},
    "chat.interrupted": {"zh-CN": "已中断", "en": "Interrupted"},
    "chat.blocked": {"zh-CN": "回答中断：IP 已被禁用", "en": "Answer cut: this IP address was blocked"},
    "chat.upstream_failed": {
        "zh-CN": "回答中断：上游渠道出错",
        "en": "Answer cut: the upstream channel failed",
    },
    "chat.thinking": {"zh-CN": "思考中…", "en": "Thinking…"},
    "chat.thought": {"zh-CN": "已思考 {seconds} 秒", "en": "Thought for {seconds} s"},
    "chat.choose_model": {"zh-CN": "请先选择模型", "en": "Choose a model first"},
    "chat.login_expired": {
        "zh-CN": "登录已失效，请重新登录",
        "en": "Your sign-in has expired, please sign in again",
    },
    "chat.busy": {"zh-CN": "请等当前回答结束", "en": "Wait until the current answer ends"},
    # interruptions
    "chat.server_restarted": {
        "zh-CN": "服务已重启：这段对话仍保留在页面上，但不能继续。可选中文字复制，或导出为文本；"
        "点击“新对话”重新开始。",
        "en": "The service restarted: this conversation is kept on screen but can no longer continue. "
        "Select its text to copy it, or export it as text; start a new chat to go on.",
    },
    "chat.export_text": {"zh-CN": "导出文本", "en": "Export text"},
    "chat.reconnecting": {"zh-CN": "连接中断，正在重连…", "en": "Connection lost, reconnecting…"},
    # export
    "chat.export_title": {"zh-CN": "对话", "en": "Conversation"},
    "chat.export_user": {"zh-CN": "用户", "en": "User"},
    "chat.export_assistant": {"zh-CN": "助手", "en": "Assistant"},
    "chat.nothing_to_export": {"zh-CN": "还没有可导出的对话", "en": "Nothing to export yet"},
}
