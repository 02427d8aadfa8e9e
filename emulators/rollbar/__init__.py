"""rollbar emulator."""
