"""Helpers for browser tests: the real Dagster web server in a subprocess, and headless Chromium over DevTools."""
