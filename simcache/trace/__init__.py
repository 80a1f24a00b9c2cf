"""Timestamped embedding traces: schema, schedule, building, reading, summaries."""
