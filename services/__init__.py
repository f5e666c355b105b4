"""Business logic. Services never import NiceGUI, FastAPI or ``app.api``; they raise domain errors."""
