"""The one pipeline: copy+hash → verify → record (card/) → derive → upload, each original
passed on as soon as it is durable (verified and recorded), then archive → process →
publish. `flow.py` holds the sequence for both `ghostroll run` and `ghostroll work`,
`stream.py` the derive and upload stages, `early.py` what starts beside the card phase
(the S3 client, the share link), `pending.py` what is left to do without importing the
heavy parts."""
