"""pyaichat: the application shell (configuration, database, HTTP API, start-up)."""
