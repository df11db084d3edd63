"""Tools for the demo, benchmarks and tests: synthetic cards, card images, an embedded S3."""
