"""The streaming pipeline: copy+hash → verify → record (card/) → derive → upload, each
original passed on as soon as it is durable (verified and recorded), so derivatives start
with the first recorded file and uploads with the first derivative. `stream.py` holds the
derive and upload stages, `pending.py` what is left to do without importing the heavy
parts."""
