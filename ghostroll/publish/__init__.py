"""Publishing: private S3 bucket, presigned links, short links, QR, durable upload queue."""
