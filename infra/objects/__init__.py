"""The object store: attachments and chart documents in MinIO or any S3, sealed at rest.

Callers name only ``interface`` (``ObjectStore``, ``ObjectStream``, the errors) and
``keys`` (``object_key``); the processes build their store with
``encrypted.secure_object_store``.

- ``interface``: what a store and an open object offer, without implementations.
- ``keys``: object keys, built from ids only.
- ``streaming``: blocking reads for worker threads, and the meter that counts an upload.
- ``base``: what every store shares (``put_chunks`` and ``put_bytes`` over ``put_file``,
  the checks before an upload, ``async with`` on an open object).
- ``s3``: the store of one S3 bucket, over the minio client.
- ``encrypted``: a store that seals everything before another store keeps it.
"""
