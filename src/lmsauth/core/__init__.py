"""What every service shares; nothing here imports a service."""
