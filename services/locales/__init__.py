"""The catalogue of ``services.i18n``, one module per area; each holds ``STRINGS``:
key → {"zh-CN": text, "en": text}."""
