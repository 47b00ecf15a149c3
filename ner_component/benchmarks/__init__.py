"""Benchmarks against the Hugging Face baseline on the same backbone, data and machine:
accuracy per training minute (`accuracy`) and inference throughput (`throughput`)."""
