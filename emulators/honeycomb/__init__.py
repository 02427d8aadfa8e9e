"""honeycomb emulator."""
