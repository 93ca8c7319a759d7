"""Workloads for the IoA benchmark: traffic/fault runs and the synthetic collaborative task suite."""
