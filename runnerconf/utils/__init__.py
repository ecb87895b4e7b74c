"""Small building blocks the runtime shares: the task manager and the base object."""
