"""Benchmarks against the Hugging Face baseline on the same backbone, data and machine:
accuracy per training minute (`accuracy`), inference throughput (`throughput`), and
the speed ceiling both engines live under (`ceiling`: the encoder's bare forward pass)."""
