"""Developer tools: benchmarks, report generation."""
