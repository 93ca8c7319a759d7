"""A three-agent demo: YAML configs (planner, encyclopedia, calculator) and the two tools they wrap."""
