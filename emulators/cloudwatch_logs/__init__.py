"""cloudwatch_logs emulator."""
