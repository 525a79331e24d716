"""A load run's record, its analysis against the scenario's thresholds, and the Markdown + PNG report."""
