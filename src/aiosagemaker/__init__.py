"""aiosagemaker: asyncio-native client for Amazon SageMaker Async Inference."""
