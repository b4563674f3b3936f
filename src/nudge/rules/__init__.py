"""The marketer's rules: the model, its loader, conditions, bucketing, schedules and decisions."""
