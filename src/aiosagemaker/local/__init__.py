"""Local SageMaker async-inference endpoint emulator."""
