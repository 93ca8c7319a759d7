"""The IoA server: FastAPI + WebSocket app, SQLite store, agent search and routing."""
