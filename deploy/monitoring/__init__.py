"""Monitoring of a Pastiche deployment: the metrics it relies on and the PromQL that reads them."""
