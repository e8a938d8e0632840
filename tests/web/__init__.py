"""The HTTP server and the status page (the page in headless Chromium)."""
