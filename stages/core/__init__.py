"""What every task shares. Nothing in here names a task."""
