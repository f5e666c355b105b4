"""Words the call log reading gives (services/log_queries.py): the user column of a guest's call and of
a call whose account was deleted since, on the logs page, in the API's list and in the CSV export."""

STRINGS: dict[str, dict[str, str]] = {
    "log_queries.guest": {"zh-CN": "访客", "en": "Guest"},
    "log_queries.deleted_user": {"zh-CN": "已删除用户", "en": "Deleted user"},
}
