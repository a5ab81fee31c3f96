"""Experiments: conditions x loop seeds as runs under one directory, planned for power."""
