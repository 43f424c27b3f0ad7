"""Load tests, sweeps and reports for the Pastiche stack (Locust, perf_analyzer, in-process baselines)."""
