#!/bin/sh
# Makes the app's bucket and an access key that may use only that bucket, so the app
# never holds MinIO's root credentials. Safe to run again: the bucket, user and policy
# are created or updated in place.
#
# MINIO_ROOT_USER, MINIO_ROOT_PASSWORD  MinIO's administrator
# S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY  what the app uses (SECURE_EMAIL_S3_*)
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"

mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "store/$S3_BUCKET"

policy=/tmp/securemail-bucket-policy.json
cat >"$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
       "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET/*"]}
  ]
}
JSON
mc admin policy create store securemail-bucket "$policy"
mc admin user add store "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
# Attaching twice is an error; it is fine only if the policy is indeed attached.
mc admin policy attach store securemail-bucket --user "$S3_ACCESS_KEY" \
  || mc admin policy entities store --user "$S3_ACCESS_KEY" | grep -q securemail-bucket
