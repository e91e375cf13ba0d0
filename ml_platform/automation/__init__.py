"""Automation generated from each model spec: daily scoring and outcome schedules, the retraining sensor, replay."""
