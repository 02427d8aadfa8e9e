"""xray emulator."""
