"""Third-party agents behind the ``run(task) -> str`` contract."""
