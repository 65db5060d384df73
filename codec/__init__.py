"""Sans-IO wire codec: STREAM_* frames to bytes and back. Never imports trio."""
