"""The long-running controller's parts: events, history, notifications, the git source, settings."""
