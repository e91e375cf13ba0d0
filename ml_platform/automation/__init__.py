"""Automation generated from each model spec: daily scoring and outcome schedules, and the retraining sensor."""
