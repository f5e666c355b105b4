"""``python -m app`` starts the server."""

from app.cli import main

if __name__ in {"__main__", "__mp_main__"}:
    main()
