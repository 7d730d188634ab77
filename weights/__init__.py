"""Shipped model folders, one per task (weights/<task>/): what hrm-mlx solve uses without --model."""
